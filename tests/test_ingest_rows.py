"""One bad row per row-level rule of site-submission-v1: each is quarantined with its
rule while the rest of its file lands. One submission carries every case (GX runs once
per file), and each case is a parametrized assertion on the quarantine."""
from __future__ import annotations

import json

import duckdb
import pytest

from safety_ledger.home import Home
from safety_ledger.ingest import ingest_landing
from safety_ledger.submission_writer import write_submission

REC = "2025-03-22T18:00:00+08:00"
PATIENT = dict(patient_ref="MRN-0001", sex="female", age_at_first_dose=50, tumor_type="cervical",
               weight_kg=61.5, first_dose_date="2025-01-10", recorded_at=REC)
INFUSION = dict(infusion_ref="INF-1", patient_ref="MRN-0001", cycle=2, started_at="2025-03-22T09:40:00+08:00",
                dose_mg=375, planned_duration_min=60, protocol="standard", combination="paclitaxel;carboplatin",
                premedication="dexamethasone;diphenhydramine", completed="true", recorded_at=REC)
REACTION = dict(reaction_ref="RX-1", infusion_ref="INF-1", onset_min=5, term="infusion_related_reaction",
                grade=2, symptoms="rash;pruritus", treatment="infusion_stopped;dexamethasone",
                outcome="recovered", recorded_at=REC)
IRAE = dict(irae_ref="IR-1", patient_ref="MRN-0001", onset_date="2025-03-01", category="hepatitis", grade=3,
            treatment="corticosteroids", outcome="recovering", recorded_at=REC)
RETRACTION = dict(record_type="infusion", ref="INF-9", reason="entered for the wrong patient", recorded_at=REC)
BASE = {"patients.csv": PATIENT, "infusions.csv": INFUSION, "reactions.csv": REACTION, "iraes.csv": IRAE,
        "retractions.csv": RETRACTION}
KEY = {"patients.csv": "patient_ref", "infusions.csv": "infusion_ref", "reactions.csv": "reaction_ref",
       "iraes.csv": "irae_ref", "retractions.csv": None}

# (file, the cells that differ from the valid row, the rule it must be quarantined for)
CASES = [
    ("patients.csv", dict(patient_ref=None), "patients.patient_ref.required"),
    ("patients.csv", dict(sex="F"), "patients.sex.vocabulary"),
    ("patients.csv", dict(sex=None), "patients.sex.required"),
    ("patients.csv", dict(age_at_first_dose="sixty"), "patients.age_at_first_dose.type"),
    ("patients.csv", dict(age_at_first_dose=17), "patients.age_at_first_dose.range"),
    ("patients.csv", dict(age_at_first_dose=111), "patients.age_at_first_dose.range"),
    ("patients.csv", dict(tumor_type="lung"), "patients.tumor_type.vocabulary"),
    ("patients.csv", dict(weight_kg=24.9), "patients.weight_kg.range"),
    ("patients.csv", dict(weight_kg=250.5), "patients.weight_kg.range"),
    ("patients.csv", dict(weight_kg="70kg"), "patients.weight_kg.type"),
    ("patients.csv", dict(first_dose_date="2025-02-30"), "patients.first_dose_date.type"),
    ("patients.csv", dict(first_dose_date="2025/01/10"), "patients.first_dose_date.type"),
    ("patients.csv", dict(first_dose_date="0000-01-10"), "patients.first_dose_date.type"),
    ("patients.csv", dict(first_dose_date="2025-03-23"), "patients.first_dose_date.not_after_recorded_at"),
    ("patients.csv", dict(recorded_at="2025-03-22T18:00:00"), "patients.recorded_at.type"),
    ("infusions.csv", dict(infusion_ref=None), "infusions.infusion_ref.required"),
    ("infusions.csv", dict(patient_ref=None), "infusions.patient_ref.required"),
    ("infusions.csv", dict(cycle=0), "infusions.cycle.range"),
    ("infusions.csv", dict(cycle=201), "infusions.cycle.range"),
    ("infusions.csv", dict(cycle="1.5"), "infusions.cycle.type"),
    ("infusions.csv", dict(started_at="2025-03-22 09:40"), "infusions.started_at.type"),
    ("infusions.csv", dict(started_at="2025-02-29T09:40:00+08:00"), "infusions.started_at.type"),
    ("infusions.csv", dict(started_at="2025-03-22T09:40:00+05:60"), "infusions.started_at.type"),
    ("infusions.csv", dict(started_at="0000-03-22T09:40:00Z"), "infusions.started_at.type"),
    ("infusions.csv", dict(started_at="2025-03-22T18:00:01+08:00"), "infusions.started_at.not_after_recorded_at"),
    ("infusions.csv", dict(dose_mg=0), "infusions.dose_mg.range"),
    ("infusions.csv", dict(dose_mg=-5), "infusions.dose_mg.range"),
    ("infusions.csv", dict(dose_mg=3000.5), "infusions.dose_mg.range"),
    ("infusions.csv", dict(planned_duration_min=9), "infusions.planned_duration_min.range"),
    ("infusions.csv", dict(planned_duration_min=1441), "infusions.planned_duration_min.range"),
    ("infusions.csv", dict(protocol="fast"), "infusions.protocol.vocabulary"),
    ("infusions.csv", dict(combination="paclitaxel; carboplatin"), "infusions.combination.type"),
    ("infusions.csv", dict(combination="aspirin"), "infusions.combination.vocabulary"),
    ("infusions.csv", dict(premedication="Dexamethasone"), "infusions.premedication.type"),
    ("infusions.csv", dict(premedication="aspirin"), "infusions.premedication.vocabulary"),
    ("infusions.csv", dict(completed="yes"), "infusions.completed.vocabulary"),
    ("infusions.csv", dict(completed=None), "infusions.completed.required"),
    ("reactions.csv", dict(infusion_ref=None), "reactions.infusion_ref.required"),
    ("reactions.csv", dict(onset_min=-1), "reactions.onset_min.range"),
    ("reactions.csv", dict(onset_min=1441), "reactions.onset_min.range"),
    ("reactions.csv", dict(term="rash"), "reactions.term.vocabulary"),
    ("reactions.csv", dict(grade=0), "reactions.grade.range"),
    ("reactions.csv", dict(grade=6), "reactions.grade.range"),
    ("reactions.csv", dict(symptoms=None), "reactions.symptoms.min_items"),
    ("reactions.csv", dict(symptoms="sneezing"), "reactions.symptoms.vocabulary"),
    ("reactions.csv", dict(treatment="aspirin"), "reactions.treatment.vocabulary"),
    ("reactions.csv", dict(outcome="dead"), "reactions.outcome.vocabulary"),
    ("reactions.csv", dict(grade=3, outcome="fatal"), "reactions.outcome.fatal_iff_grade5"),
    ("reactions.csv", dict(grade=5, outcome="recovered"), "reactions.outcome.fatal_iff_grade5"),
    ("iraes.csv", dict(onset_date="March 2025"), "iraes.onset_date.type"),
    ("iraes.csv", dict(category="flu"), "iraes.category.vocabulary"),
    ("iraes.csv", dict(grade=6), "iraes.grade.range"),
    ("iraes.csv", dict(treatment="steroids"), "iraes.treatment.vocabulary"),
    ("iraes.csv", dict(grade=2, outcome="fatal"), "iraes.outcome.fatal_iff_grade5"),
    ("iraes.csv", dict(patient_ref=None), "iraes.patient_ref.required"),
    ("retractions.csv", dict(record_type="drug"), "retractions.record_type.vocabulary"),
    ("retractions.csv", dict(ref=None), "retractions.ref.required"),
    ("retractions.csv", dict(reason=None), "retractions.reason.required"),
    ("retractions.csv", dict(reason="x" * 501), "retractions.reason.length"),
]
# valid variants that must land as events (nullable weight, empty lists, fatal with grade 5,
# started_at exactly at recorded_at, a date on the same local day as recorded_at)
VALID = [
    ("patients.csv", dict(weight_kg=None)),
    ("patients.csv", dict(first_dose_date="2025-03-22")),
    ("infusions.csv", dict(combination=None, premedication=None)),
    ("infusions.csv", dict(started_at=REC, dose_mg=0.5)),
    ("reactions.csv", dict(grade=5, outcome="fatal", treatment=None)),
    ("reactions.csv", dict(recorded_at="1500-01-01T00:00Z")),   # beyond pandas' nanoseconds (1677-2262)
    ("iraes.csv", dict(grade=5, outcome="fatal")),
    ("retractions.csv", dict(record_type="patient", ref="MRN-0001", reason="x" * 500)),
]


def _rows(file: str):
    """The valid row first, then every bad case, then the valid variants; refs made unique."""
    rows, expected = [], {}
    key = KEY[file]
    cases = [(c, rule) for f, c, rule in CASES if f == file] + [(c, None) for f, c in VALID if f == file]
    rows.append(dict(BASE[file]))
    for i, (change, rule) in enumerate(cases, start=2):
        row = dict(BASE[file], **change)
        if key and key not in change:
            row[key] = f"{row[key]}-{i}"
        if file == "retractions.csv" and "ref" not in change and row["record_type"] != "patient":
            row["ref"] = f"INF-9-{i}"
        rows.append(row)
        expected[i] = rule
    return rows, expected


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    home = Home(tmp_path_factory.mktemp("home"))
    files, expected = {}, {}
    for file in BASE:
        files[file], expected[file] = _rows(file)
    write_submission(home.landing, "SITE-RULES", "2025-03-23-001", "2025-03-23T08:00:00+08:00", files)
    [report] = ingest_landing(home, progress=lambda _: None)
    con = duckdb.connect()
    quarantine = {(r[0], r[1]): (r[2], r[3]) for r in con.execute(
        f"SELECT source_file, source_row, rules, reason FROM read_parquet('{home.quarantine}/*.parquet')").fetchall()}
    events = {}
    for file, table in [("patients.csv", "patients"), ("infusions.csv", "infusions"),
                        ("reactions.csv", "reactions"), ("iraes.csv", "iraes"), ("retractions.csv", "retractions")]:
        events[file] = {r[0] for r in con.execute(
            f"SELECT source_row FROM read_parquet('{home.events}/{table}/*.parquet')").fetchall()}
    return report, quarantine, events, expected


@pytest.mark.parametrize("file,change,rule", CASES, ids=[c[2] + "=" + json.dumps(c[1])[:30] for c in CASES])
def test_bad_row_is_quarantined_with_its_rule(ingested, file, change, rule):
    report, quarantine, events, expected = ingested
    row = next(n for n, r in expected[file].items() if r == rule and _same(file, n, change))
    rules, reason = quarantine[(file, row)]
    assert rule in rules
    assert reason.startswith(f"{file} row {row}: ")
    assert row not in events[file]


def _same(file, n, change):
    rows, _ = _rows(file)
    return all(rows[n - 1].get(k) == v for k, v in change.items())


def test_valid_rows_of_the_same_files_land(ingested):
    report, quarantine, events, expected = ingested
    for file in BASE:
        valid_rows = {1} | {n for n, rule in expected[file].items() if rule is None}
        assert valid_rows <= events[file], file
        assert not any(quarantine.get((file, n)) for n in valid_rows), file


def test_counts_add_up(ingested):
    report, quarantine, events, expected = ingested
    # every file: 1 valid row + its cases; by hand: 15+22+12+6+4 bad, 2+2+2+1+1 valid variants
    assert report.status == "accepted"
    assert report.quarantined == len(CASES) == 15 + 22 + 12 + 6 + 4
    assert report.events == 5 + len(VALID)
    assert report.duplicates == 0
    assert report.rows == report.events + report.duplicates + report.quarantined
    assert report.files["infusions.csv"].rows == 1 + 22 + 2


def test_quarantine_keeps_no_raw_patient_ref(ingested, tmp_path_factory):
    report, quarantine, events, expected = ingested
    for rules, reason in quarantine.values():
        assert "MRN-0001" not in reason
