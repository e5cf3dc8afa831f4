"""The "Signals and premedication" page and the Overview's open-signals section, under
streamlit.testing.v1.AppTest, against a warehouse written by hand (as tests/test_dashboard.py
does): marts.signals and marts.premedication_effect rows chosen here, so the page can be
checked to show exactly them, newest signal first, with the method's definition and citation.
"""
from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from appkit import frame, open_page, texts

PAGE = "views/signals.py"

# stratum_type, stratum, infusions, observed, expected, statistic, status, first_signalled_at,
# signalled_at_infusion
SIGNALS = [
    ("site_id", "SITE-A", 400, 9, 10.0, 0.0, "no signal", None, None),
    ("tumor_type", "nsclc", 120, 9, 3.0, 5.2125, "signal", "2025-02-10 01:00:00+00", 95),
    ("site_id", "SITE-C", 150, 11, 3.75, 7.0431, "signal", "2025-03-02 06:30:00+00", 140),
    ("regimen_class", "chemotherapy", 300, 8, 7.5, 0.0167, "no signal", None, None),
    ("tumor_type", "cervical", 430, 11, 10.75, 0.0, "no signal", None, None),
]
# The hand-worked example of tests/test_premedication_effect.py: cycle, n1, a, n0, c,
# risk_ratio, rr_ci_low, rr_ci_high, informative_strata, crude
PREMED = [
    (1, 10, 1, 20, 4, 0.5, 0.064006, 3.905869, 1, 0.5),
    (2, 5, 1, 15, 6, 0.5, 0.077884, 3.209894, 1, 0.5),
    (3, 4, 0, 6, 1, 0.0, None, None, 1, 0.0),
    (None, 19, 2, 41, 11, 85 / 194, 0.111600, 1.720169, 3, (2 / 19) / (11 / 41)),
]


def write_warehouse(path: Path, *, tables: set[str] = frozenset({"signals", "premedication_effect"}),
                    signals=SIGNALS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        con.execute("CREATE SCHEMA marts")
        con.execute("CREATE TABLE marts.literature (publication_id VARCHAR)")
        if "signals" in tables:
            con.execute("""CREATE TABLE marts.signals (stratum_type VARCHAR, stratum VARCHAR,
                infusions BIGINT, observed BIGINT, expected DOUBLE, statistic DOUBLE,
                status VARCHAR, first_signalled_at TIMESTAMPTZ, signalled_at_infusion BIGINT)""")
            if signals:
                con.executemany("INSERT INTO marts.signals VALUES (?,?,?,?,?,?,?,?,?)", signals)
            con.execute("""ALTER TABLE marts.signals ADD COLUMN method VARCHAR DEFAULT 'binomial MaxSPRT';
                ALTER TABLE marts.signals ADD COLUMN baseline DOUBLE DEFAULT 0.025;
                ALTER TABLE marts.signals ADD COLUMN monitored_infusions BIGINT;
                UPDATE marts.signals SET monitored_infusions = infusions;
                ALTER TABLE marts.signals ADD COLUMN threshold DOUBLE DEFAULT 3.640746;
                ALTER TABLE marts.signals ADD COLUMN attained_alpha DOUBLE DEFAULT 0.049744;
                ALTER TABLE marts.signals ADD COLUMN max_infusions BIGINT DEFAULT 4000""")
        if "premedication_effect" in tables:
            con.execute("""CREATE TABLE marts.premedication_effect (cycle INT,
                premedicated_infusions BIGINT, premedicated_reaction_infusions BIGINT,
                not_premedicated_infusions BIGINT, not_premedicated_reaction_infusions BIGINT,
                risk_ratio DOUBLE, rr_ci_low DOUBLE, rr_ci_high DOUBLE,
                informative_strata BIGINT, crude_risk_ratio DOUBLE)""")
            con.executemany("INSERT INTO marts.premedication_effect VALUES (?,?,?,?,?,?,?,?,?,?)",
                            PREMED)
            # rates and Wilson intervals (z = 1.959964) as the build computes them
            for arm, k, n in (("premedicated", "premedicated_reaction_infusions", "premedicated_infusions"),
                              ("not_premedicated", "not_premedicated_reaction_infusions",
                               "not_premedicated_infusions")):
                con.execute(f"""
                    ALTER TABLE marts.premedication_effect ADD COLUMN {arm}_rate DOUBLE;
                    ALTER TABLE marts.premedication_effect ADD COLUMN {arm}_ci_low DOUBLE;
                    ALTER TABLE marts.premedication_effect ADD COLUMN {arm}_ci_high DOUBLE;
                    UPDATE marts.premedication_effect SET
                      {arm}_rate = {k}::DOUBLE / {n},
                      {arm}_ci_low = (({k}::DOUBLE / {n}) + 1.959964^2 / (2 * {n})
                         - 1.959964 * sqrt(({k}::DOUBLE / {n}) * (1 - {k}::DOUBLE / {n}) / {n}
                                           + 1.959964^2 / (4 * {n}^2))) / (1 + 1.959964^2 / {n}),
                      {arm}_ci_high = (({k}::DOUBLE / {n}) + 1.959964^2 / (2 * {n})
                         + 1.959964 * sqrt(({k}::DOUBLE / {n}) * (1 - {k}::DOUBLE / {n}) / {n}
                                           + 1.959964^2 / (4 * {n}^2))) / (1 + 1.959964^2 / {n})""")
    finally:
        con.close()
    os.replace(tmp, path)
    return path


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SAFETY_LEDGER_HOME", str(tmp_path))
    return tmp_path


def warehouse_file(home: Path) -> Path:
    return home / "warehouse" / "safety.duckdb"


# ---------------------------------------------------------------------------- the page


def test_signals_newest_first_with_definition_and_citation(home):
    write_warehouse(warehouse_file(home))
    at = open_page(PAGE)
    assert at.title[0].value == "Signals and premedication"
    t = texts(at)
    assert "Signal = binomial MaxSPRT (Kulldorff M, Davis RL, Kolczak M, Lewis E, Lieu T, Platt R." in t
    assert "Sequential Analysis 2011;30:58–78" in t
    assert "pooled reaction rate of the program" in t
    assert ("Baseline (H0): pooled reaction rate 2.5%; critical value 3.641 for alpha 0.05 "
            "(exact false-alarm probability 0.0497); surveillance of the first 4,000 infusions "
            "of each stratum (100 reactions expected).") in t
    assert "**2 open signals** of 5 strata monitored (newest first)." in t
    sig = frame(at, "Status", "LLR")
    # signals newest first, then the rest by stratum type and stratum (as the mart orders them)
    assert list(sig["Stratum"]) == ["SITE-C", "nsclc", "chemotherapy", "SITE-A", "cervical"]
    assert list(sig["Status"]) == ["signal", "signal", "no signal", "no signal", "no signal"]
    c = sig.iloc[0].to_dict()
    assert c == {"Status": "signal", "First signalled": "2025-03-02 06:30 UTC",
                 "Stratum type": "Site", "Stratum": "SITE-C", "Infusions": "150",
                 "Monitored": "150", "Observed": "11", "Expected": "3.8", "LLR": "7.043",
                 "Threshold": "3.641", "At infusion": "140"}
    a = sig.iloc[3].to_dict()
    assert (a["First signalled"], a["Stratum type"], a["LLR"], a["At infusion"]) == (
        "—", "Site", "0.000", "—")


def test_premedication_table_and_mantel_haenszel_line(home):
    write_warehouse(warehouse_file(home))
    at = open_page(PAGE)
    t = texts(at)
    assert "Greenland S, Robins JM. Estimation of a common effect parameter from sparse " \
           "follow-up data. Biometrics 1985;41:55–68" in t
    assert ("Mantel–Haenszel risk ratio, premedicated vs not, stratified by cycle: **0.44** "
            "(95% CI 0.11–1.72) over 3 cycles with both groups; crude (unstratified) 0.39.") in t
    assert "With premedication: reaction rate 10.5% (95% CI 2.9–31.4%) — 2 of 19 infusions" in t
    assert "Without premedication: reaction rate 26.8% (95% CI 15.7–41.9%) — 11 of 41 infusions" in t
    pe = frame(at, "Risk ratio", "Premedicated")
    assert list(pe["Cycle"]) == ["1", "2", "3", "all cycles"]
    assert pe.iloc[0].to_dict() == {
        "Cycle": "1", "Premedicated": "1 of 10", "Rate with": "10.0%", "95% CI with": "1.8–40.4%",
        "Not premedicated": "4 of 20", "Rate without": "20.0%", "95% CI without": "8.1–41.6%",
        "Risk ratio": "0.50", "Risk ratio 95% CI": "0.06–3.91"}
    c3 = pe.iloc[2].to_dict()
    assert (c3["Premedicated"], c3["Risk ratio"], c3["Risk ratio 95% CI"]) == ("0 of 4", "0.00", "—")
    assert pe.iloc[3]["Risk ratio 95% CI"] == "0.11–1.72"


def test_no_open_signal(home):
    quiet = [r[:6] + ("no signal", None, None) for r in SIGNALS]
    write_warehouse(warehouse_file(home), signals=quiet)
    at = open_page(PAGE)
    assert "**0 open signals** of 5 strata monitored." in texts(at)
    at = open_page(None)  # Overview
    assert "No open signal in 5 monitored strata." in texts(at)
    assert not [df for df in at.dataframe if "LLR" in df.value.columns]


def test_empty_marts_are_explained(home):
    write_warehouse(warehouse_file(home), signals=[])
    at = open_page(PAGE)
    assert "`marts.signals` has no rows: no current infusions yet." in [i.value for i in at.info]


# ---------------------------------------------------------------------------- overview


def test_overview_lists_open_signals_newest_first(home):
    write_warehouse(warehouse_file(home))
    at = open_page(None)
    t = texts(at)
    assert "Open signals" in [s.value for s in at.subheader]
    assert "**2 open signals** in 5 monitored strata, newest first:" in t
    assert "Kulldorff et al. 2011, Sequential Analysis 30:58–78" in t
    opened = frame(at, "First signalled", "LLR")
    assert opened.to_dict("list") == {
        "First signalled": ["2025-03-02 06:30 UTC", "2025-02-10 01:00 UTC"],
        "Stratum type": ["Site", "Tumor type"], "Stratum": ["SITE-C", "nsclc"],
        "Observed": ["11", "9"], "Expected": ["3.8", "3.0"], "LLR": ["7.043", "5.213"],
        "Threshold": ["3.641", "3.641"]}


# ---------------------------------------------------------------------------- built before


def test_warehouse_built_before_these_marts_explains_itself(home):
    write_warehouse(warehouse_file(home), tables=set())  # only marts.literature
    at = open_page(PAGE)
    infos = [i.value for i in at.info]
    path = warehouse_file(home).resolve()
    assert infos == [
        f"The warehouse at {path} has no `marts.signals` yet. "
        "Run `safety-ledger build` to rebuild it with the current transforms.",
        f"The warehouse at {path} has no `marts.premedication_effect` yet. "
        "Run `safety-ledger build` to rebuild it with the current transforms."]
    assert not at.dataframe
    at = open_page(None)  # Overview
    assert (f"The warehouse at {path} has no `marts.signals` yet. "
            "Run `safety-ledger build` to rebuild it with the current transforms.") in [
        i.value for i in at.info]


def test_no_warehouse_on_the_new_page(home):
    at = open_page(PAGE)
    assert at.title[0].value == "Signals and premedication"
    assert [w.value for w in at.warning] == [
        f"No warehouse yet at {warehouse_file(home).resolve()}. "
        "Run `safety-ledger demo --no-dashboard` or `safety-ledger build`."]
