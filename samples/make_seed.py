"""Regenerate the seed samples from the data below.

    cd /work/main && uv run python samples/make_seed.py

Writes
  samples/landing/SEED-CASES/2025-06-01-seed/   cases 1-4 of the seed paper as one contract-v1
                                                submission (patients, infusions, reactions, manifest)
  samples/literature/2025-06-01-seed-review/    Tables 2 and 3 of the seed paper as a literature drop

Every value, and every choice made where the paper is silent, is explained row by row in
samples/README.md; the literature format is in samples/literature/README.md. The committed
CSVs and manifests are the product; this script only makes them reproducible.
"""
from __future__ import annotations

import json
from pathlib import Path

from safety_ledger.atomic import write_bytes, write_text
from safety_ledger.submission_writer import csv_bytes, sha256_hex, write_submission

HERE = Path(__file__).resolve().parent
SITE_ID = "SEED-CASES"
SUBMISSION_ID = "2025-06-01-seed"
EXPORTED_AT = "2025-06-01T18:00:00+08:00"
DROP_ID = "2025-06-01-seed-review"
LIT_RECORDED_AT = "2025-06-01T12:00:00+08:00"  # the paper's search date, "As of June 1, 2025"

# Premedication lists of Table 4
PREMED_DEX_DIPH_FAM = ["dexamethasone", "diphenhydramine", "famotidine"]  # cases 1 and 4
PREMED_MP_CHLOR_FAM = ["methylprednisolone", "chlorpheniramine", "famotidine"]  # case 2

PATIENTS = [
    # case 1: 77/Male, right lung cancer (histology not stated -> other), first cadonilimab November 2022
    dict(patient_ref="MRN-0001", sex="male", age_at_first_dose=77, tumor_type="other",
         weight_kg=None, first_dose_date="2022-11-14", recorded_at="2022-11-14T16:30:00+08:00"),
    # case 2: 68/Female, gastric cardia adenocarcinoma, cadonilimab from 2023-07-28
    dict(patient_ref="MRN-0002", sex="female", age_at_first_dose=68, tumor_type="gastric_gej",
         weight_kg=None, first_dose_date="2023-07-28", recorded_at="2023-07-28T16:30:00+08:00"),
    # case 3: 66/Female, cervical squamous carcinoma with lung metastases; reaction 2023-09-26
    dict(patient_ref="MRN-0003", sex="female", age_at_first_dose=66, tumor_type="cervical",
         weight_kg=None, first_dose_date="2023-09-26", recorded_at="2023-09-26T16:30:00+08:00"),
    # case 4: 50/Female (age from Table 1 only), metastatic cervical adenocarcinoma; first
    # cadonilimab 2025-03-22 (Table 4 "Cycle 1")
    dict(patient_ref="MRN-0004", sex="female", age_at_first_dose=50, tumor_type="cervical",
         weight_kg=None, first_dose_date="2025-03-22", recorded_at="2025-03-22T16:30:00+08:00"),
]


def infusion(ref, patient, cycle, day, time, dose, minutes, protocol, combination, premed, completed):
    return dict(infusion_ref=ref, patient_ref=patient, cycle=cycle,
                started_at=f"{day}T{time}:00+08:00", dose_mg=dose, planned_duration_min=minutes,
                protocol=protocol, combination=combination, premedication=premed,
                completed=completed, recorded_at=f"{day}T17:00:00+08:00")


INFUSIONS = [
    # case 1: three cycles q3w from November 2022 (monotherapy after chemotherapy), then serplulimab
    infusion("INF-0001", "MRN-0001", 1, "2022-11-14", "09:30", 250, 60, "standard", [], [], True),
    infusion("INF-0002", "MRN-0001", 2, "2022-12-05", "09:30", 250, 60, "standard", [], [], True),
    infusion("INF-0003", "MRN-0001", 3, "2022-12-26", "09:30", 250, 60, "standard", [], [], True),
    # case 1: 2023-06-26, dizziness and chest tightness, infusion discontinued (index reaction)
    infusion("INF-0004", "MRN-0001", 4, "2023-06-26", "09:30", 250, 60, "standard", [], [], False),
    # case 1: rechallenge, 250 mg over 2 h instead of 1 h, premedicated, no reaction ...
    infusion("INF-0005", "MRN-0001", 5, "2023-07-17", "09:30", 250, 120, "extended", [], PREMED_DEX_DIPH_FAM, True),
    # ... and "completed four further cycles uneventfully" (same regimen assumed)
    infusion("INF-0006", "MRN-0001", 6, "2023-08-07", "09:30", 250, 120, "extended", [], PREMED_DEX_DIPH_FAM, True),
    infusion("INF-0007", "MRN-0001", 7, "2023-08-28", "09:30", 250, 120, "extended", [], PREMED_DEX_DIPH_FAM, True),
    infusion("INF-0008", "MRN-0001", 8, "2023-09-18", "09:30", 250, 120, "extended", [], PREMED_DEX_DIPH_FAM, True),
    infusion("INF-0009", "MRN-0001", 9, "2023-10-09", "09:30", 250, 120, "extended", [], PREMED_DEX_DIPH_FAM, True),
    # case 2: cycle 1 on 2023-07-28 with capecitabine and apatinib, 375 mg d1 q3w
    infusion("INF-0010", "MRN-0002", 1, "2023-07-28", "09:30", 375, 60, "standard",
             ["capecitabine", "apatinib"], [], True),
    # case 2: "During the second cycle on September 11, 2023" rash, pruritus, hypotension (index)
    infusion("INF-0011", "MRN-0002", 2, "2023-09-11", "09:30", 375, 60, "standard",
             ["capecitabine", "apatinib"], [], False),
    # case 2: rechallenge, stepwise 10% over 30 min, observe 30 min, 90% over 90 min; full dose
    infusion("INF-0012", "MRN-0002", 3, "2023-10-09", "09:30", 375, 150, "stepwise",
             ["capecitabine", "apatinib"], PREMED_MP_CHLOR_FAM, True),
    # case 3: cadonilimab 250 mg monotherapy; reaction during the infusion on 2023-09-26; no rechallenge
    infusion("INF-0013", "MRN-0003", 1, "2023-09-26", "09:30", 250, 60, "standard", [], [], False),
    # case 4: paclitaxel 240 mg (premedicated), carboplatin 550 mg, then cadonilimab 480 mg over 1 h
    infusion("INF-0014", "MRN-0004", 1, "2025-03-22", "10:30", 480, 60, "standard",
             ["paclitaxel", "carboplatin"], PREMED_DEX_DIPH_FAM, False),
    # case 4: rechallenge, extended to 2 h (first 15 min at 5 mg/h), premedicated 1 h before
    infusion("INF-0015", "MRN-0004", 2, "2025-04-12", "10:30", 480, 120, "extended",
             ["paclitaxel", "carboplatin"], PREMED_DEX_DIPH_FAM, True),
]


def reaction(ref, infusion_ref, day, onset, term, grade, symptoms, treatment, outcome):
    return dict(reaction_ref=ref, infusion_ref=infusion_ref, onset_min=onset, term=term, grade=grade,
                symptoms=symptoms, treatment=treatment, outcome=outcome,
                recorded_at=f"{day}T17:10:00+08:00")


REACTIONS = [
    # case 1 index: dizziness, chest tightness; infusion discontinued, antiallergic management
    # (drugs not named), recovered promptly -> CTCAE v5 infusion-related reaction grade 2
    reaction("RXN-0001", "INF-0004", "2023-06-26", 30, "infusion_related_reaction", 2,
             ["dizziness", "chest_tightness"], ["infusion_stopped"], "recovered"),
    # case 2 index: diffuse rash, pruritus, significant drop in blood pressure; dexamethasone 10 mg IV,
    # methylprednisolone 40 mg IV, IV fluids -> skin + hypotension = anaphylaxis, grade 3
    reaction("RXN-0002", "INF-0011", "2023-09-11", 30, "anaphylaxis", 3,
             ["rash", "pruritus", "hypotension"],
             ["infusion_stopped", "dexamethasone", "methylprednisolone", "iv_fluids"], "recovered"),
    # case 2 rechallenge: mild flushing during the initial 10%, resolved with extra antihistamine
    # -> infusion-related reaction grade 2 (responds promptly to antihistamine), see README
    reaction("RXN-0003", "INF-0012", "2023-10-09", 15, "infusion_related_reaction", 2,
             ["flushing"], ["chlorpheniramine"], "recovered"),
    # case 3 index: chest tightness, dyspnea, abdominal pain, hypotension; methylprednisolone,
    # promethazine, dexamethasone, fluid resuscitation -> anaphylaxis grade 3
    reaction("RXN-0004", "INF-0013", "2023-09-26", 30, "anaphylaxis", 3,
             ["chest_tightness", "dyspnea", "abdominal_pain", "hypotension"],
             ["infusion_stopped", "methylprednisolone", "promethazine", "dexamethasone", "iv_fluids"],
             "recovered"),
    # case 4 index: ~5 min in, facial and generalized erythema, pruritus, BP 120/80 -> 85/55,
    # systemic weakness; dexamethasone, methylprednisolone, promethazine, IV fluids -> anaphylaxis grade 3
    reaction("RXN-0005", "INF-0014", "2025-03-22", 5, "anaphylaxis", 3,
             ["rash", "pruritus", "hypotension", "weakness"],
             ["infusion_stopped", "dexamethasone", "methylprednisolone", "promethazine", "iv_fluids"],
             "recovered"),
    # case 4 rechallenge: "Only transient pruritus; no hypotension or rash" -> allergic reaction grade 1
    reaction("RXN-0006", "INF-0015", "2025-04-12", 60, "allergic_reaction", 1,
             ["pruritus"], [], "recovered"),
]

# Table 2 (case reports) and Table 3 (clinical studies), cells verbatim:
# (title, indication, type as printed, key finding / key result)
TABLE_2 = [
    ("A surprising complete response to cadonilimab in a primary metastatic cervical cancer", "Cervical Cancer", "Case Report", "CR for 10 months"),
    ("Advanced cervix cancer patient with chemotherapy-induced grade IV myelosuppression achieved complete remission with cadonilimab", "Cervical Cancer", "Case Report", "Remission after chemotherapy intolerance"),
    ("Multiple primary tumors patient developed microsatellite stable gastric cancer after cadonilimab treatment for liver cancer", "Gastric + Liver Cancer", "Case Report", "Multiple primaries benefited"),
    ("Combination of cadonilimab and apatinib as salvage therapy in MSI-H gastric cancer", "MSI-H Gastric Cancer", "Case Report", "Immunotherapy + targeted therapy benefited"),
    ("Therapeutic response of cadonilimab plus chemotherapy in STK11-mutant NSCLC", "STK11-mutated NSCLC", "Case Report", "Response in frontline treatment"),
    ("Efficacy of cadonilimab and anlotinib in drug-resistant pulmonary LCNEC", "LCNEC", "Case Report", "Immuno-targeted combo responded"),
    ("Cadonilimab plus chemotherapy in superaged gastric cancer patient", "Superaged Gastric Cancer", "Case Report", "85 y/o patient sustained remission"),
    ("Cadonilimab-related toxic epidermal necrolysis-like reactions successfully treated with supplemental Adalimumab", "Liver Cancer", "Case Report", "Severe TEN managed with Adalimumab"),
    ("Patients with positive HER-2 amplification advanced gastroesophageal junction cancer achieved complete response with combined chemotherapy of AK104/cadonilimab", "HER2+ GEJ Cancer", "Case Report", "CR in HER2+ patient"),
]
TABLE_3 = [
    ("Safety and antitumour activity of cadonilimab (COMPASSION-03)", "Advanced Solid Tumors", "Phase 1b/2", "ORR: Cervical 32%, ESCC 18%, HCC 17%"),
    ("Efficacy and safety of cadonilimab + lenvatinib (COMPASSION-08)", "HCC", "Phase Ib/II", "ORR 35%, PFS 8.6-9.8mo, OS up to 27mo"),
    ("Cadonilimab Combined with Chemotherapy ± Bevacizumab (COMPASSION-13)", "Cervical Cancer", "Phase II", "ORR 66-92%"),
    ("Efficacy of cadonilimab in previously treated R/M NPC (COMPASSION-06)", "Nasopharyngeal Cancer", "Phase II", "ORR 26%, 12mo OS 79%"),
    ("Cadonilimab + platinum chemo ± bevacizumab (COMPASSION-16)", "Cervical Cancer", "Phase III", "PFS 12.7 vs 8.1mo; OS improved"),
    ("Cadonilimab with chemo in HER2-negative GEJ (COMPASSION-04)", "Gastric/GEJ Cancer", "Phase 1b/2", "ORR 52%, mOS 17mo"),
    ("First-line cadonilimab + chemotherapy (Nature Medicine)", "Gastric/GEJ Cancer", "Phase III", "Main registrational trial"),
    ("Nab-paclitaxel + cadonilimab 2nd-line gastric", "Gastric Cancer", "Phase II", "Immune rechallenge exploration"),
    ("Cadonilimab + SOX neoadjuvant", "Gastric Cancer", "Phase II", "SOX-based neoadjuvant"),
    ("Neoadjuvant cadonilimab + FLOT", "Gastric Cancer", "Phase II", "pCR 21%, MPR 45%"),
    ("Cadonilimab + chemo for advanced/recurrent endometrial cancer", "Endometrial Cancer", "Phase II", "45 planned"),
    ("Short-course RT + chemo + cadonilimab in rectal cancer", "Rectal Cancer", "Phase II", "50 planned"),
    ("AK104-202 study in NSCLC", "NSCLC", "Phase Ib/II", "ORR 10%, OS 19.6mo"),
    ("First-in-human study (COMPASSION-01)", "Multiple Tumors", "Phase Ia/Ib", "ORR 13%"),
    ("Cadonilimab + Anlotinib in NSCLC", "NSCLC", "Phase Ib/II", "ORR 51-60%"),
    ("Cadonilimab Phase II in ES-SCLC", "SCLC", "Phase II", "Preliminary safety"),
    ("Real-world: cadonilimab + TKI in uHCC", "HCC", "Real-world", "ORR 38%, OS 13.7mo"),
    ("Real-world: cadonilimab + lenvatinib in HCC", "HCC", "Real-world", "ORR 37%, PFS 8.1mo"),
    ("Cost-effectiveness analysis (gastric cancer)", "Gastric Cancer", "Health Economics", "ICER: $67,378/QALY"),
    ("Cost-effectiveness analysis (cervical cancer)", "Cervical Cancer", "Health Economics", "ICER: $70,220-75,944/QALY"),
    ("Cost-effectiveness (COMPASSION-16 cervical cancer)", "Cervical Cancer", "Health Economics", "WTP threshold analysis"),
]
# The paper's "Type" / "Study type" cell -> study_type (samples/literature/README.md)
STUDY_TYPE = {
    "Case Report": "case_report",
    "Phase Ia/Ib": "phase1",
    "Phase 1b/2": "phase1b_2",
    "Phase Ib/II": "phase1b_2",
    "Phase II": "phase2",
    "Phase III": "phase3",
    "Real-world": "real_world",
    "Health Economics": "health_economics",
}
PUBLICATION_COLUMNS = ("publication_id", "title", "indication", "study_type", "key_finding", "recorded_at")


def publications() -> list[dict]:
    rows = []
    for prefix, table in (("seed-t2", TABLE_2), ("seed-t3", TABLE_3)):
        for no, (title, indication, printed_type, finding) in enumerate(table, start=1):
            rows.append(dict(publication_id=f"{prefix}-{no:02d}", title=title, indication=indication,
                             study_type=STUDY_TYPE[printed_type], key_finding=finding,
                             recorded_at=LIT_RECORDED_AT))
    return rows


def write_literature_drop(root: Path) -> Path:
    folder = root / DROP_ID
    data, n = csv_bytes(PUBLICATION_COLUMNS, publications())
    write_bytes(folder / "publications.csv", data)
    manifest = {"schema_version": 1, "drop_id": DROP_ID, "exported_at": EXPORTED_AT,
                "files": {"publications.csv": {"sha256": sha256_hex(data), "rows": n}}}
    write_text(folder / "manifest.json", json.dumps(manifest, indent=2) + "\n")  # last
    return folder


def main() -> None:
    sub = write_submission(HERE / "landing", SITE_ID, SUBMISSION_ID, EXPORTED_AT, {
        "patients.csv": PATIENTS, "infusions.csv": INFUSIONS, "reactions.csv": REACTIONS})
    lit = write_literature_drop(HERE / "literature")
    print(sub)
    print(lit)


if __name__ == "__main__":
    main()
