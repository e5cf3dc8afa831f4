"""Sidebar filters and the as-of board view (issue 5 item 7), on the seed built end to end.

Filtered figures are worked out by hand from the 15 seed infusions listed in
samples/README.md ("Figures worked out by hand from the seed"):

- tumor type cervical: INF-0013 (G3), INF-0014 (G3), INF-0015 (G1) -> 3 infusions, 3 with a
  reaction, 2 grade 3+, 2 patients (MRN-0003, MRN-0004).  Wilson (z = 1.959964):
  3 of 3 -> [3 / (3 + z^2), 1] = [3 / 6.8414589, 1] = [0.43850, 1] -> "43.9–100.0%";
  2 of 3 -> centre 1.3069098 / 2.2804863 = 0.573086, half 0.833345 / 2.2804863 = 0.365425
  -> [0.20766, 0.93851] -> "20.8–93.9%".  Rechallenge: MRN-0003 not rechallenged,
  MRN-0004 breakthrough -> 1 of 1, [1 / 4.8414589, 1] = [0.20655, 1] -> "20.7–100.0%".
- dates 2023-07-01 to 2023-12-31: INF-0005..0009 (MRN-0001, no reaction), INF-0010,
  0011 (G3), 0012 (G2) (MRN-0002), INF-0013 (G3) (MRN-0003) -> 9 infusions, 3 with a
  reaction, 2 grade 3+, 3 patients; 3/9 = 33.3%.  Index infusions in range: MRN-0002's
  (2023-09-11, breakthrough) and MRN-0003's (2023-09-26, not rechallenged); MRN-0001's
  (2023-06-26) and MRN-0004's (2025-03-22) are not -> 1 of 1 rechallenged, 2 with an
  index reaction.
- regimen class monotherapy: INF-0001..0009 and INF-0013 -> 10 infusions, 2 with a reaction
  (0004 G2, 0013 G3), 1 grade 3+, 2 patients; 2/10 = 20.0%.
"""
from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from appkit import texts

import seed_expected as X
from dashboard import filters as F
from safety_ledger.cli import main

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "dashboard" / "app.py"


# ---------------------------------------------------------------------------- units


def test_no_filter_is_inactive_and_adds_no_condition():
    f = F.Filters()
    assert not f.active
    assert F.conditions(f, "o") == ("true", [])


def test_conditions_and_their_parameters():
    f = F.Filters(site="SITE-A", tumor_types=("cervical", "hcc"), regimen_classes=("tki",),
                  date_from=date(2025, 1, 1), date_to=date(2025, 3, 31))
    sql, params = F.conditions(f, "o")
    assert sql == ("o.site_id = ? AND list_contains(?::VARCHAR[], o.tumor_type) AND "
                   "list_contains(?::VARCHAR[], o.regimen_class) AND "
                   "o.started_local_date >= ? AND o.started_local_date <= ?")
    assert params == ["SITE-A", ["cervical", "hcc"], ["tki"], date(2025, 1, 1), date(2025, 3, 31)]
    sql, params = F.conditions(f, "e", date_column="onset_date", regimen=False)
    assert "regimen_class" not in sql and "e.onset_date >= ?" in sql and len(params) == 4
    assert f.describe(("site", "dates")) == "site SITE-A; dates 2025-01-01 to 2025-03-31"


def test_filter_strata_keeps_only_chosen_strata_of_each_dimension():
    sig = pd.DataFrame({"stratum_type": ["site_id", "site_id", "tumor_type", "tumor_type",
                                         "regimen_class"],
                        "stratum": ["SITE-A", "SITE-B", "cervical", "hcc", "tki"]})
    got = F.filter_strata(sig, F.Filters(site="SITE-B", tumor_types=("hcc",)))
    assert list(got["stratum"]) == ["SITE-B", "hcc", "tki"]  # regimen not filtered: all kept


# ---------------------------------------------------------------------------- the seed


@pytest.fixture(scope="module")
def seed_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("filters-home")
    shutil.copytree(REPO / X.LANDING_FOLDER, home / "landing" / X.SITE_ID / X.SUBMISSION_ID)
    assert main(["--home", str(home), "ingest"]) == 0
    assert main(["--home", str(home), "build"]) == 0
    return home


@pytest.fixture
def app(seed_home, monkeypatch):
    monkeypatch.setenv("SAFETY_LEDGER_HOME", str(seed_home))
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_unfiltered_overview_is_the_whole_seed(app):
    t = texts(app)
    assert "— 6 of 15 infusions" in t
    assert "Showing the live warehouse." in t
    assert app.selectbox(key=F.SITE_KEY).options == [F.ALL_SITES, X.SITE_ID]
    assert app.multiselect(key=F.TUMOR_KEY).options == ["cervical", "gastric_gej", "other"]
    assert app.multiselect(key=F.REGIMEN_KEY).options == ["chemo_tki", "chemotherapy",
                                                          "monotherapy"]


def test_tumor_type_filter_on_overview_and_rechallenge(app):
    app.multiselect(key=F.TUMOR_KEY).set_value(["cervical"]).run()
    assert not app.exception
    t = texts(app)
    assert "Reaction rate 100.0% (95% CI 43.9–100.0%) — 3 of 3 infusions" in t
    assert "Grade 3+ rate 66.7% (95% CI 20.8–93.9%) — 2 of 3 infusions" in t
    assert "2 patients with ≥1 current infusion, who received 3 infusions" in t
    assert "Rechallenge success 100.0% (95% CI 20.7–100.0%) — 1 of 1 rechallenged patient" in t
    assert "2 patients with an index reaction, 1 not rechallenged" in t
    assert "Filtered: tumor types cervical." in t

    app.switch_page("views/rechallenge.py")
    app.run()
    assert not app.exception
    assert "Rechallenge success 100.0% (95% CI 20.7–100.0%) — 1 of 1 rechallenged patient" \
        in texts(app)
    tab = next(df.value for df in app.dataframe if "Success" in df.value.columns)
    assert list(tab["Protocol"]) == ["extended", "not rechallenged"]
    assert list(tab["Success"]) == ["1 of 1", "0 of 0"]
    pts = next(df.value for df in app.dataframe if "Patient" in df.value.columns)
    assert list(pts["Tumor type"]) == ["cervical", "cervical"]
    assert list(pts["Outcome"]) == ["—", "breakthrough"]  # MRN-0003 (2023), MRN-0004 (2025)


def test_date_range_filter(app):
    app.date_input(key=F.DATES_KEY).set_value((date(2023, 7, 1), date(2023, 12, 31))).run()
    assert not app.exception
    t = texts(app)
    assert "Reaction rate 33.3% (95% CI" in t and "— 3 of 9 infusions" in t
    assert "— 2 of 9 infusions" in t  # grade 3+
    assert "3 patients with ≥1 current infusion, who received 9 infusions" in t
    assert "— 1 of 1 rechallenged patient" in t
    assert "2 patients with an index reaction, 1 not rechallenged" in t


def test_regimen_filter(app):
    app.multiselect(key=F.REGIMEN_KEY).set_value(["monotherapy"]).run()
    assert not app.exception
    t = texts(app)
    assert "Reaction rate 20.0% (95% CI" in t and "— 2 of 10 infusions" in t
    assert "— 1 of 10 infusions" in t
    assert "2 patients with ≥1 current infusion, who received 10 infusions" in t


def test_filters_survive_a_page_change_and_are_read_through_current(app):
    app.multiselect(key=F.TUMOR_KEY).set_value(["gastric_gej"]).run()
    app.switch_page("views/case_timeline.py")
    app.run()
    assert not app.exception
    assert app.multiselect(key=F.TUMOR_KEY).value == ["gastric_gej"]
    # the only listed patient is case 2 (gastric_gej)
    assert len(app.selectbox(key="timeline_patient").options) == 1
    assert "chemo_tki" in "\n".join(m.value for m in app.markdown)


def test_as_of_board_view_is_built_on_demand_and_listed(app, seed_home):
    # The seed was ingested today: as of 2020-01-01 the pipeline had nothing.
    app.date_input(key="as_of_date").set_value(date(2020, 1, 1)).run()
    app.button(key="as_of_build").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert (seed_home / "warehouse" / "as_of" / "2020-01-01.duckdb").is_file()
    assert app.selectbox(key="board_view").value == "2020-01-01"
    assert app.selectbox(key="board_view").options == [
        "Live (every ingested event)", "As of 2020-01-01 (end of day, UTC)"]
    t = texts(app)
    assert "Showing the as-of build for 2020-01-01" in t
    assert "Reaction rate — (no infusions, so no rate) — 0 of 0 infusions" in t
    # back to the live warehouse
    app.selectbox(key="board_view").set_value("live").run()
    assert not app.exception
    assert "— 6 of 15 infusions" in texts(app)


def test_irae_monthly_under_filters_by_hand(tmp_path):
    """irAEs under site / tumor type / onset dates, on core tables written by hand:
    P1 SITE-A cervical, P2 SITE-A hcc, P3 SITE-B cervical."""
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE SCHEMA core")
    con.execute("CREATE TABLE core.current_patients AS SELECT * FROM (VALUES "
                "('SITE-A', 'P1', 'cervical'), ('SITE-A', 'P2', 'hcc'), ('SITE-B', 'P3', 'cervical')) "
                "t(site_id, patient_key, tumor_type)")
    con.execute("CREATE TABLE core.current_iraes AS SELECT site_id, patient_key, onset_date::DATE "
                "AS onset_date, date_trunc('month', onset_date::DATE)::DATE AS onset_month, "
                "category, grade FROM (VALUES "
                "('SITE-A', 'P1', '2025-01-10', 'hepatitis', 3), "
                "('SITE-A', 'P2', '2025-01-20', 'hepatitis', 1), "
                "('SITE-B', 'P3', '2025-02-05', 'dermatitis', 2), "
                "('SITE-A', 'P1', '2025-02-07', 'dermatitis', 1)) "
                "t(site_id, patient_key, onset_date, category, grade)")
    con.execute("CREATE TABLE core.infusion_outcomes AS SELECT o.site_id, o.patient_key, "
                "p.tumor_type, 'monotherapy' AS regimen_class, d::DATE AS started_local_date "
                "FROM (VALUES ('SITE-A', 'P1', '2025-01-03'), ('SITE-A', 'P1', '2025-02-01'), "
                "('SITE-A', 'P2', '2025-01-05'), ('SITE-B', 'P3', '2025-02-02'), "
                "('SITE-B', 'P3', '2025-03-01')) o(site_id, patient_key, d) "
                "JOIN core.current_patients p USING (site_id, patient_key)")

    def run(f):
        sql, params = F.irae_monthly_sql(f)
        return [tuple(r) for r in con.execute(sql, params).fetchall()]

    # month, category, events, grade 3+, patients, treated patients
    assert run(F.Filters(site="SITE-A")) == [
        (date(2025, 1, 1), "hepatitis", 2, 1, 2, 2),   # P1 g3, P2 g1; treated P1, P2
        (date(2025, 2, 1), "dermatitis", 1, 0, 1, 1),  # P1; treated P1 (02-01)
    ]
    assert run(F.Filters(tumor_types=("cervical",), date_from=date(2025, 2, 1),
                         date_to=date(2025, 2, 28))) == [
        (date(2025, 2, 1), "dermatitis", 2, 0, 2, 2),  # P3, P1; treated P1 (02-01), P3 (02-02)
    ]
    # regimen classes do not apply to irAEs (an irAE is the patient's, not an infusion's)
    assert run(F.Filters(site="SITE-A", regimen_classes=("tki",))) == run(F.Filters(site="SITE-A"))


def test_tumor_type_filter_on_reaction_rates(app):
    """Cervical only (INF-0013 cycle 1 monotherapy G3, INF-0014 cycle 1 chemotherapy G3,
    INF-0015 cycle 2 chemotherapy G1): by cycle 1 -> 2 of 2, 2 grade 3+; 2 -> 1 of 1, 0
    grade 3+.  By regimen: chemotherapy 2 of 2, monotherapy 1 of 1.  Wilson lower bounds
    n / (n + z^2): 2 of 2 -> 2 / 5.8414589 = 0.34238 -> "34.2–100.0%"; 1 of 1 -> 0.20655."""
    app.multiselect(key=F.TUMOR_KEY).set_value(["cervical"]).run()
    app.switch_page("views/reaction_rates.py")
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    t = texts(app)
    assert "Filtered: tumor types cervical." in t
    by_cycle = next(df.value for df in app.dataframe if "Cycle" in df.value.columns)
    assert list(by_cycle["Cycle"]) == ["1", "2"]
    assert list(by_cycle["Infusions"]) == ["2", "1"]
    assert list(by_cycle["With reaction"]) == ["2", "1"]
    assert list(by_cycle["Reaction rate 95% CI"]) == ["34.2–100.0%", "20.7–100.0%"]
    assert list(by_cycle["Grade 3+ infusions"]) == ["2", "0"]
    by_regimen = next(df.value for df in app.dataframe if "Regimen class" in df.value.columns)
    assert dict(zip(by_regimen["Regimen class"], by_regimen["With reaction"])) == {
        "chemotherapy": "2", "monotherapy": "1"}
    assert dict(zip(by_regimen["Regimen class"], by_regimen["Infusions"])) == {
        "chemotherapy": "2", "monotherapy": "1"}
    # and each table downloads as CSV
    assert len(app.get("download_button")) >= 3
