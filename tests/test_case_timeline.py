"""Case timelines (issue 5 item 6): the seed's four cases, ingested and built, must read like
the paper's narrative.  Every expected row below is written by hand from the paper
(/work/shared/seed/000_acf6ee2aaa7f1d6e.txt) and the coding choices of samples/README.md
(dates, cycles, protocols, premedication, grades, onset minutes, treatments), not from the
code's output:

- case 1 (MRN-0001): cycles 1-3 on 2022-11-14 / 12-05 / 12-26 (standard, no premedication,
  completed); cycle 4 on 2023-06-26 interrupted by an infusion-related reaction grade 2
  (dizziness, chest tightness; infusion stopped; recovered; onset 30 min) = index; cycle 5 on
  2023-07-17 over 2 h with dexamethasone, diphenhydramine, famotidine = rechallenge,
  tolerated; cycles 6-9 (2023-08-07, 08-28, 09-18, 10-09) the same, uneventful.
- case 2 (MRN-0002): cycle 1 on 2023-07-28 with capecitabine + apatinib (chemo_tki);
  cycle 2 on 2023-09-11 interrupted by anaphylaxis grade 3 (rash, pruritus, hypotension;
  infusion stopped, dexamethasone, methylprednisolone, IV fluids) = index; cycle 3 on
  2023-10-09 stepwise with methylprednisolone, chlorpheniramine, famotidine = rechallenge,
  with flushing grade 2 at 15 min (chlorpheniramine) and completed: breakthrough.
- case 3 (MRN-0003): cycle 1 on 2023-09-26, anaphylaxis grade 3 (chest tightness, dyspnea,
  abdominal pain, hypotension), no later infusion: not rechallenged.
- case 4 (MRN-0004): cycle 1 on 2025-03-22 with paclitaxel + carboplatin after
  dexamethasone, diphenhydramine, famotidine, anaphylaxis grade 3 at 5 min (rash, pruritus,
  hypotension, weakness) = index; cycle 2 on 2025-04-12 extended, allergic reaction grade 1
  (pruritus) at 60 min, completed: breakthrough.
No case has an irAE.
"""
from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

import seed_expected as X
from safety_ledger.cli import main
from safety_ledger.pseudonym import Pseudonymizer, load_key

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "dashboard" / "app.py"
PAGE = "views/case_timeline.py"

DEX3 = ["dexamethasone", "diphenhydramine", "famotidine"]
STD = dict(protocol="standard", premedication=[], completed=True, role=None, tier=None)
EXT1 = dict(protocol="extended", premedication=DEX3, completed=True, role=None, tier=None)


def inf(day, cycle, regimen, **kw):
    row = {"event_type": "infusion", "event_date": date.fromisoformat(day), "cycle": cycle,
           "regimen_class": regimen}
    row.update(kw)
    return row


def rxn(day, cycle, term, grade, onset, symptoms, treatment, role, tier=None):
    return {"event_type": "reaction", "event_date": date.fromisoformat(day), "cycle": cycle,
            "term": term, "grade": grade, "onset_min": onset, "symptoms": symptoms,
            "treatment": treatment, "outcome": "recovered", "role": role, "tier": tier}


CASES = {
    "MRN-0001": [
        inf("2022-11-14", 1, "monotherapy", **STD),
        inf("2022-12-05", 2, "monotherapy", **STD),
        inf("2022-12-26", 3, "monotherapy", **STD),
        inf("2023-06-26", 4, "monotherapy", **{**STD, "completed": False, "role": "index"}),
        rxn("2023-06-26", 4, "infusion_related_reaction", 2, 30,
            ["dizziness", "chest_tightness"], ["infusion_stopped"], "index"),
        inf("2023-07-17", 5, "monotherapy", **{**EXT1, "role": "rechallenge", "tier": "tolerated"}),
        inf("2023-08-07", 6, "monotherapy", **EXT1),
        inf("2023-08-28", 7, "monotherapy", **EXT1),
        inf("2023-09-18", 8, "monotherapy", **EXT1),
        inf("2023-10-09", 9, "monotherapy", **EXT1),
    ],
    "MRN-0002": [
        inf("2023-07-28", 1, "chemo_tki", **STD),
        inf("2023-09-11", 2, "chemo_tki", **{**STD, "completed": False, "role": "index"}),
        rxn("2023-09-11", 2, "anaphylaxis", 3, 30, ["rash", "pruritus", "hypotension"],
            ["infusion_stopped", "dexamethasone", "methylprednisolone", "iv_fluids"], "index"),
        inf("2023-10-09", 3, "chemo_tki", protocol="stepwise",
            premedication=["methylprednisolone", "chlorpheniramine", "famotidine"],
            completed=True, role="rechallenge", tier="breakthrough"),
        rxn("2023-10-09", 3, "infusion_related_reaction", 2, 15, ["flushing"],
            ["chlorpheniramine"], "rechallenge", "breakthrough"),
    ],
    "MRN-0003": [
        inf("2023-09-26", 1, "monotherapy", **{**STD, "completed": False, "role": "index"}),
        rxn("2023-09-26", 1, "anaphylaxis", 3, 30,
            ["chest_tightness", "dyspnea", "abdominal_pain", "hypotension"],
            ["infusion_stopped", "methylprednisolone", "promethazine", "dexamethasone",
             "iv_fluids"], "index"),
    ],
    "MRN-0004": [
        inf("2025-03-22", 1, "chemotherapy", protocol="standard", premedication=DEX3,
            completed=False, role="index", tier=None),
        rxn("2025-03-22", 1, "anaphylaxis", 3, 5, ["rash", "pruritus", "hypotension", "weakness"],
            ["infusion_stopped", "dexamethasone", "methylprednisolone", "promethazine",
             "iv_fluids"], "index"),
        inf("2025-04-12", 2, "chemotherapy", **{**EXT1, "role": "rechallenge",
                                                "tier": "breakthrough"}),
        rxn("2025-04-12", 2, "allergic_reaction", 1, 60, ["pruritus"], [], "rechallenge",
            "breakthrough"),
    ],
}
TUMOR = {"MRN-0001": "other", "MRN-0002": "gastric_gej", "MRN-0003": "cervical",
         "MRN-0004": "cervical"}


@pytest.fixture(scope="module")
def seed_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("timeline-home")
    shutil.copytree(REPO / X.LANDING_FOLDER, home / "landing" / X.SITE_ID / X.SUBMISSION_ID)
    assert main(["--home", str(home), "ingest"]) == 0
    assert main(["--home", str(home), "build"]) == 0
    return home


@pytest.fixture(scope="module")
def pseudonym(seed_home):
    p = Pseudonymizer(load_key(seed_home / "secret.key"))
    return {mrn: p(X.SITE_ID, mrn) for mrn in CASES}


@pytest.fixture(scope="module")
def timeline(seed_home):
    con = duckdb.connect(str(seed_home / "warehouse" / "safety.duckdb"), read_only=True)
    cur = con.execute("select * from marts.patient_timeline order by site_id, patient_key, event_order")
    names = [c[0] for c in cur.description]
    rows = [dict(zip(names, r)) for r in cur.fetchall()]
    con.close()
    return rows


def comparable(row: dict) -> dict:
    out = {"event_type": row["event_type"], "event_date": row["event_date"], "cycle": row["cycle"]}
    if row["event_type"] == "infusion":
        out.update(regimen_class=row["regimen_class"], protocol=row["protocol"],
                   premedication=list(row["premedication"] or []), completed=row["completed"],
                   role=row["role"], tier=row["rechallenge_tier"])
    else:
        out.update(term=row["term"], grade=row["grade"], onset_min=row["onset_min"],
                   symptoms=list(row["symptoms"] or []), treatment=list(row["treatment"] or []),
                   outcome=row["outcome"], role=row["role"], tier=row["rechallenge_tier"])
    return out


@pytest.mark.parametrize("mrn", list(CASES))
def test_each_case_reads_in_the_papers_order(timeline, pseudonym, mrn):
    mine = [r for r in timeline if r["patient_key"] == pseudonym[mrn]]
    assert [r["event_order"] for r in mine] == list(range(1, len(CASES[mrn]) + 1))
    assert [comparable(r) for r in mine] == CASES[mrn]
    assert {r["tumor_type"] for r in mine} == {TUMOR[mrn]}
    assert {r["site_id"] for r in mine} == {X.SITE_ID}


def test_index_bands_and_no_iraes(timeline, pseudonym):
    band = {r["patient_key"]: r["index_grade_band"] for r in timeline
            if r["event_type"] == "infusion" and r["role"] == "index"}
    assert band == {pseudonym["MRN-0001"]: "1-2", pseudonym["MRN-0002"]: "3+",
                    pseudonym["MRN-0003"]: "3+", pseudonym["MRN-0004"]: "3+"}
    assert not [r for r in timeline if r["event_type"] == "irae"]
    assert len(timeline) == 15 + 6  # every current infusion and reaction once


def test_no_raw_patient_ref_in_the_mart(timeline):
    assert not any("MRN-" in str(v) for r in timeline for v in r.values())


# ---------------------------------------------------------------------------- the page


@pytest.fixture
def app(seed_home, monkeypatch):
    monkeypatch.setenv("SAFETY_LEDGER_HOME", str(seed_home))
    return AppTest.from_file(str(APP), default_timeout=60)


def open_page(at: AppTest, **query) -> AppTest:
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def markdown(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in at.markdown)


def test_page_tells_case_2_like_the_paper(app, pseudonym):
    at = open_page(app, site=X.SITE_ID, patient=pseudonym["MRN-0002"])
    assert at.selectbox(key="timeline_patient").value == f"{X.SITE_ID} · {pseudonym['MRN-0002']}"
    t = markdown(at)
    assert ("**Index reaction** on cycle 2 (2023-09-11), grade band 3+. **Rechallenge** on "
            "cycle 3 (2023-10-09), stepwise protocol, premedicated: **breakthrough**.") in t
    lines = [ln for ln in t.splitlines() if ln[:2] in ("1.", "2.", "3.", "4.", "5.")]
    assert lines == [
        "1. **2023-07-28** — cycle 1 infusion, chemo_tki (cadonilimab with capecitabine, "
        "apatinib), standard protocol, premedication none, 375 mg over 60 min, completed.",
        "2. **2023-09-11** — cycle 2 infusion, chemo_tki (cadonilimab with capecitabine, "
        "apatinib), standard protocol, premedication none, 375 mg over 60 min, not completed. "
        "*Index infusion.*",
        "3. **2023-09-11**, 30 min in — reaction: anaphylaxis, grade 3; symptoms rash, pruritus, "
        "hypotension; treatment infusion stopped, dexamethasone, methylprednisolone, iv fluids; "
        "outcome recovered.",
        "4. **2023-10-09** — cycle 3 infusion, chemo_tki (cadonilimab with capecitabine, "
        "apatinib), stepwise protocol, premedication methylprednisolone, chlorpheniramine, "
        "famotidine, 375 mg over 150 min, completed. *Rechallenge: breakthrough.*",
        "5. **2023-10-09**, 15 min in — reaction: infusion related reaction, grade 2; symptoms "
        "flushing; treatment chlorpheniramine; outcome recovered.",
    ]
    table = next(df.value for df in at.dataframe if "Rechallenge tier" in df.value.columns)
    assert list(table["Event"]) == ["infusion", "infusion", "reaction", "infusion", "reaction"]
    assert list(table["Rechallenge tier"]) == ["", "", "", "breakthrough", "breakthrough"]
    assert "MRN-" not in t
    assert any(b.label == "Download CSV" for b in at.get("download_button"))


def test_page_case_3_not_rechallenged_and_case_4_onset(app, pseudonym):
    at = open_page(app, site=X.SITE_ID, patient=pseudonym["MRN-0003"])
    assert ("**Index reaction** on cycle 1 (2023-09-26), grade band 3+. **Not rechallenged**: "
            "no later infusion.") in markdown(at)
    at.selectbox(key="timeline_patient").set_value(f"{X.SITE_ID} · {pseudonym['MRN-0004']}").run()
    assert not at.exception
    t = markdown(at)
    assert "female, 50 years at first dose, tumor type **cervical**, first dose 2025-03-22." in t
    assert "2. **2025-03-22**, 5 min in — reaction: anaphylaxis, grade 3;" in t
    assert "4. **2025-04-12**, 60 min in — reaction: allergic reaction, grade 1; symptoms " \
           "pruritus; treatment none; outcome recovered." in t


def test_patient_list_lists_the_four_cases_by_index_date(app, pseudonym):
    at = open_page(app)
    # index reactions: case 1 2023-06-26, case 2 2023-09-11, case 3 2023-09-26, case 4 2025-03-22
    assert at.selectbox(key="timeline_patient").options == [
        f"{X.SITE_ID} · {pseudonym[m]} ({label})" for m, label in (
            ("MRN-0001", "other; index reaction cycle 4, grade 2"),
            ("MRN-0002", "gastric_gej; index reaction cycle 2, grade 3"),
            ("MRN-0003", "cervical; index reaction cycle 1, grade 3"),
            ("MRN-0004", "cervical; index reaction cycle 1, grade 3"))]


def test_selecting_a_row_on_the_rechallenge_page_opens_the_timeline(app, pseudonym):
    at = app
    at.run()
    at.switch_page("views/rechallenge.py")
    at.run()
    assert not at.exception
    patients = next(df.value for df in at.dataframe if "Patient" in df.value.columns)
    # earliest index reaction first: cases 1, 2, 3, 4
    assert list(patients["Patient"]) == [pseudonym[m] for m in
                                         ("MRN-0001", "MRN-0002", "MRN-0003", "MRN-0004")]
    assert list(patients["Outcome"]) == ["tolerated", "breakthrough", "—", "breakthrough"]
    at.session_state["table_rechallenge_patients"] = {
        "selection": {"rows": [2], "columns": [], "cells": []}}  # a click on case 3's row
    at.run()
    assert not at.exception
    assert at.title[0].value == "Case timeline"
    assert at.query_params["patient"] == [pseudonym["MRN-0003"]] or \
        at.query_params["patient"] == pseudonym["MRN-0003"]
    assert "**Not rechallenged**" in markdown(at)
