"""Figures of the seed submission samples/landing/SEED-CASES/2025-06-01-seed/, worked out by
hand from its rows (samples/README.md, "Figures worked out by hand from the seed").

Plain data, no imports of project code: the end-to-end tests compare the warehouse built
from the seed against these. Infusion refs are INF-0001..INF-0015, patients MRN-0001..0004:

    INF-0001..0009  MRN-0001  cycles 1-9  other        monotherapy   reaction on 0004 (G2)
    INF-0010..0012  MRN-0002  cycles 1-3  gastric_gej  chemo_tki     0011 (G3), 0012 (G2)
    INF-0013        MRN-0003  cycle 1     cervical     monotherapy   0013 (G3)
    INF-0014..0015  MRN-0004  cycles 1-2  cervical     chemotherapy  0014 (G3), 0015 (G1)

"patients" = distinct patients with at least one infusion in the group. Each infusion has at
most one reaction, so its max grade is that reaction's grade.
"""

SITE_ID = "SEED-CASES"
SUBMISSION_ID = "2025-06-01-seed"
LANDING_FOLDER = "samples/landing/SEED-CASES/2025-06-01-seed"  # relative to the repo root

# Data rows per file (manifest.json)
ROWS = {"patients.csv": 4, "infusions.csv": 15, "reactions.csv": 6}

# marts.submissions: every row is valid and new
SUBMISSION = dict(status="accepted", rows=25, events=25, duplicates=0, quarantined=0)

# All infusions: 15 rows; reactions on 0004, 0011, 0012, 0013, 0014, 0015; grade 3+ on 0011, 0013, 0014
OVERALL = dict(infusions=15, reaction_infusions=6, grade3plus_infusions=3, patients=4)

REACTION_RATE_BY_CYCLE = {
    1: dict(infusions=4, reaction_infusions=2, grade3plus_infusions=2, patients=4),  # 0001, 0010, 0013 G3, 0014 G3
    2: dict(infusions=3, reaction_infusions=2, grade3plus_infusions=1, patients=3),  # 0002, 0011 G3, 0015 G1
    3: dict(infusions=2, reaction_infusions=1, grade3plus_infusions=0, patients=2),  # 0003, 0012 G2
    4: dict(infusions=1, reaction_infusions=1, grade3plus_infusions=0, patients=1),  # 0004 G2
    5: dict(infusions=1, reaction_infusions=0, grade3plus_infusions=0, patients=1),  # 0005 (case 1 rechallenge)
    6: dict(infusions=1, reaction_infusions=0, grade3plus_infusions=0, patients=1),  # 0006
    7: dict(infusions=1, reaction_infusions=0, grade3plus_infusions=0, patients=1),  # 0007
    8: dict(infusions=1, reaction_infusions=0, grade3plus_infusions=0, patients=1),  # 0008
    9: dict(infusions=1, reaction_infusions=0, grade3plus_infusions=0, patients=1),  # 0009
}

REACTION_RATE_BY_TUMOR_TYPE = {
    "other": dict(infusions=9, reaction_infusions=1, grade3plus_infusions=0, patients=1),  # MRN-0001: 0001-0009; 0004 G2
    "gastric_gej": dict(infusions=3, reaction_infusions=2, grade3plus_infusions=1, patients=1),  # MRN-0002: 0010-0012; 0011 G3, 0012 G2
    "cervical": dict(infusions=3, reaction_infusions=3, grade3plus_infusions=2, patients=2),  # MRN-0003: 0013 G3; MRN-0004: 0014 G3, 0015 G1
}

REACTION_RATE_BY_REGIMEN = {
    "monotherapy": dict(infusions=10, reaction_infusions=2, grade3plus_infusions=1, patients=2),  # 0001-0009 (0004 G2), 0013 G3
    "chemo_tki": dict(infusions=3, reaction_infusions=2, grade3plus_infusions=1, patients=1),  # capecitabine+apatinib: 0010-0012 (0011 G3, 0012 G2)
    "chemotherapy": dict(infusions=2, reaction_infusions=2, grade3plus_infusions=1, patients=1),  # paclitaxel+carboplatin: 0014 G3, 0015 G1
}

# marts.reaction_rate_by_site when SEED-CASES is the only site: every (cycle, tumor_type) stratum's
# pooled rate is the site's own, so expected = sum of reactions per stratum = 6, O/E = 1.
REACTION_RATE_BY_SITE = {
    "SEED-CASES": dict(infusions=15, reaction_infusions=6, grade3plus_infusions=3, patients=4,
                       expected_reaction_infusions=6.0, observed_to_expected=1.0, outside_funnel=False),
}

# Index reaction and rechallenge per patient (marts-v1 definitions)
RECHALLENGE_BY_PATIENT = {
    # RXN-0001 on INF-0004 (2023-06-26, G2); rechallenge INF-0005 extended, premedicated, completed, no reaction
    "MRN-0001": dict(index_reaction="RXN-0001", index_infusion="INF-0004", index_grade=2, index_grade_band="1-2",
                     rechallenge_infusion="INF-0005", protocol="extended", premedicated=True, outcome="tolerated"),
    # RXN-0002 on INF-0011 (2023-09-11, G3); rechallenge INF-0012 stepwise, premedicated, completed, RXN-0003 G2
    "MRN-0002": dict(index_reaction="RXN-0002", index_infusion="INF-0011", index_grade=3, index_grade_band="3+",
                     rechallenge_infusion="INF-0012", protocol="stepwise", premedicated=True, outcome="breakthrough"),
    # RXN-0004 on INF-0013 (2023-09-26, G3); no later infusion
    "MRN-0003": dict(index_reaction="RXN-0004", index_infusion="INF-0013", index_grade=3, index_grade_band="3+",
                     rechallenge_infusion=None, protocol=None, premedicated=None, outcome=None),
    # RXN-0005 on INF-0014 (2025-03-22, G3); rechallenge INF-0015 extended, premedicated, completed, RXN-0006 G1
    "MRN-0004": dict(index_reaction="RXN-0005", index_infusion="INF-0014", index_grade=3, index_grade_band="3+",
                     rechallenge_infusion="INF-0015", protocol="extended", premedicated=True, outcome="breakthrough"),
}

# marts.rechallenge_outcomes, keyed by (protocol, premedicated, index_grade_band). The patient
# who was not rechallenged (MRN-0003) is in the row with protocol None; premedicated is None there
# too (no rechallenge infusion to read it from). success_rate = (tolerated + breakthrough) / rechallenged,
# None when rechallenged = 0.
RECHALLENGE = {
    ("extended", True, "1-2"): dict(patients_with_index_reaction=1, rechallenged=1, tolerated=1,
                                    breakthrough=0, failed=0, success_rate=1.0),  # MRN-0001
    ("extended", True, "3+"): dict(patients_with_index_reaction=1, rechallenged=1, tolerated=0,
                                   breakthrough=1, failed=0, success_rate=1.0),  # MRN-0004
    ("stepwise", True, "3+"): dict(patients_with_index_reaction=1, rechallenged=1, tolerated=0,
                                   breakthrough=1, failed=0, success_rate=1.0),  # MRN-0002
    (None, None, "3+"): dict(patients_with_index_reaction=1, rechallenged=0, tolerated=0,
                             breakthrough=0, failed=0, success_rate=None),  # MRN-0003
}
RECHALLENGE_TOTALS = dict(patients_with_index_reaction=4, rechallenged=3, tolerated=1, breakthrough=2,
                          failed=0, successes=3)

# Wilson 95% intervals (z = 1.959964) worked by hand in samples/README.md, rounded to 4 decimals:
# compare with abs tolerance WILSON_ABS_TOL.
WILSON_ABS_TOL = 1e-4
WILSON = {
    "overall_reaction_rate": dict(k=6, n=15, rate=0.4, ci_low=0.1982, ci_high=0.6425),
    "overall_grade3plus_rate": dict(k=3, n=15, rate=0.2, ci_low=0.0705, ci_high=0.4519),
    "cycle_1_reaction_rate": dict(k=2, n=4, rate=0.5, ci_low=0.1500, ci_high=0.8500),
    "cycle_4_reaction_rate": dict(k=1, n=1, rate=1.0, ci_low=0.2065, ci_high=1.0),  # also each rechallenge row's 1/1
    "cycle_5_reaction_rate": dict(k=0, n=1, rate=0.0, ci_low=0.0, ci_high=0.7935),  # cycles 5-9 alike
}

# The literature drop samples/literature/2025-06-01-seed-review/ (marts.literature)
LITERATURE_FOLDER = "samples/literature/2025-06-01-seed-review"
LITERATURE_ROWS = 30
LITERATURE_BY_STUDY_TYPE = {
    "case_report": 9,  # Table 2 rows 1-9
    "phase1": 1,  # t3-14 (Phase Ia/Ib)
    "phase1b_2": 5,  # t3-01, t3-06 (Phase 1b/2); t3-02, t3-13, t3-15 (Phase Ib/II)
    "phase2": 8,  # t3-03, 04, 08, 09, 10, 11, 12, 16
    "phase3": 2,  # t3-05, t3-07
    "real_world": 2,  # t3-17, t3-18
    "health_economics": 3,  # t3-19, 20, 21
}
