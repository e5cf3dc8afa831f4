"""The dashboard under streamlit.testing.v1.AppTest, against a warehouse written by hand.

The fixture below writes marts.* tables whose figures are chosen here (not computed by the
build), so each page can be checked to show exactly those figures, with their
denominators, and "—" where a rate has no denominator.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from appkit import open_page, texts

PAGES = {
    "overview": "views/overview.py",
    "reaction-rates": "views/reaction_rates.py",
    "rechallenge": "views/rechallenge.py",
    "irae-trends": "views/irae_trends.py",
    "sites": "views/sites.py",
    "literature": "views/literature.py",
    "case-timeline": "views/case_timeline.py",
}
TITLES = {
    "overview": "Overview",
    "reaction-rates": "Reaction rates",
    "rechallenge": "Rechallenge",
    "irae-trends": "irAE trends",
    "sites": "Sites and submissions",
    "literature": "Literature",
    "case-timeline": "Case timeline",
}

# 95% Wilson score interval (z = 1.959964), written in SQL independently of the dashboard.
WILSON_SQL = """
CREATE MACRO w_rate(k, n) AS CASE WHEN n > 0 THEN k::DOUBLE / n END;
CREATE MACRO w_low(k, n) AS CASE WHEN n > 0 THEN
  ((k::DOUBLE / n) + 1.959964^2 / (2 * n)
   - 1.959964 * sqrt((k::DOUBLE / n) * (1 - k::DOUBLE / n) / n + 1.959964^2 / (4 * n^2)))
  / (1 + 1.959964^2 / n) END;
CREATE MACRO w_high(k, n) AS CASE WHEN n > 0 THEN
  ((k::DOUBLE / n) + 1.959964^2 / (2 * n)
   + 1.959964 * sqrt((k::DOUBLE / n) * (1 - k::DOUBLE / n) / n + 1.959964^2 / (4 * n^2)))
  / (1 + 1.959964^2 / n) END;
"""

# (group, infusions, reaction_infusions, grade3plus_infusions, patients)
BY_CYCLE = [(1, 12, 3, 1, 12), (2, 11, 2, 1, 11), (3, 9, 1, 0, 9), (4, 8, 0, 0, 8)]
BY_TUMOR = [("cervical", 20, 4, 1, 6), ("nsclc", 12, 2, 1, 4), ("hcc", 8, 0, 0, 2)]
BY_REGIMEN = [("chemotherapy", 22, 4, 2, 7), ("monotherapy", 10, 1, 0, 3),
              ("chemo_bevacizumab", 8, 1, 0, 2), ("chemo_tki", 0, 0, 0, 0)]
# site, infusions, reactions, g3+, patients, expected, o/e, funnel_low, funnel_high, outside
BY_SITE = [("SITE-A", 28, 6, 2, 8, 4.2, 6 / 4.2, 0, 10, False),
           ("SITE-B", 12, 0, 0, 4, 1.8, 0.0, 0, 6, False)]
# protocol, premedicated, band, index, rechallenged, tolerated, breakthrough, failed
RECHALLENGE = [("standard", True, "1-2", 2, 2, 1, 1, 0),
               ("stepwise", True, "3+", 1, 1, 1, 0, 0),
               ("extended", False, "1-2", 1, 1, 0, 0, 1),
               (None, None, "3+", 1, 0, 0, 0, 0)]
IRAE = [("2025-01-01", "dermatitis", 2, 0, 2, 8), ("2025-01-01", "hepatitis", 1, 0, 1, 8),
        ("2025-02-01", "hepatitis", 1, 1, 1, 10), ("2025-02-01", "pneumonitis", 1, 1, 1, 10),
        ("2025-03-01", "thyroiditis", 2, 0, 2, 11)]
SUBMISSIONS = [
    ("SITE-A", "2025-01-15-001", "2025-01-15 08:00+00", "2025-01-15 09:00+00", "accepted",
     None, 30, 28, 1, 1),
    ("SITE-A", "2025-02-15-001", "2025-02-15 08:00+00", "2025-02-16 09:00+00", "accepted",
     None, 20, 20, 0, 0),
    ("SITE-B", "2025-01-20-001", "2025-01-20 08:00+00", "2025-01-20 09:00+00", "rejected",
     "sha256 of infusions.csv does not match the manifest", None, 0, 0, 0),
    ("SITE-B", "2025-01-21-001", "2025-01-21 08:00+00", "2025-01-21 09:00+00", "accepted",
     None, 25, 22, 0, 3),
]
LITERATURE = [
    ("PUB-001", "Cadonilimab plus chemotherapy for persistent, recurrent or metastatic "
                "cervical cancer", "cervical", "phase3",
     "Infusion-related reactions were uncommon and mostly grade 1-2.", "2025-01-10 00:00+00"),
    ("PUB-002", "Anaphylaxis on cadonilimab rechallenge: a case report", "gastric_gej",
     "case_report", "Stepwise desensitization allowed rechallenge.", "2025-01-11 00:00+00"),
    ("PUB-003", "Real-world safety of cadonilimab in hepatocellular carcinoma", "hcc",
     "real_world", "Grade 3+ irAEs in 8% of patients.", "2025-01-12 00:00+00"),
]


def _rate_table(con, name: str, key: str, key_type: str, rows, extra_cols: str = "",
                extra_rows=None) -> None:
    con.execute(f"CREATE TABLE tmp_{name} ({key} {key_type}, infusions INT, "
                f"reaction_infusions INT, grade3plus_infusions INT, patients INT{extra_cols})")
    for i, r in enumerate(rows):
        vals = list(r) + (list(extra_rows[i]) if extra_rows else [])
        con.execute(f"INSERT INTO tmp_{name} VALUES ({', '.join('?' * len(vals))})", vals)
    con.execute(f"""
        CREATE TABLE marts.{name} AS SELECT *,
            w_rate(reaction_infusions, infusions) AS reaction_rate,
            w_low(reaction_infusions, infusions) AS ci_low,
            w_high(reaction_infusions, infusions) AS ci_high,
            w_rate(grade3plus_infusions, infusions) AS grade3plus_rate,
            w_low(grade3plus_infusions, infusions) AS grade3plus_ci_low,
            w_high(grade3plus_infusions, infusions) AS grade3plus_ci_high
        FROM tmp_{name}""")
    con.execute(f"DROP TABLE tmp_{name}")


def write_warehouse(path: Path, *, tables: set[str] | None = None,
                    by_site=BY_SITE, build_info_json: bool = True) -> Path:
    """Write a warehouse with the figures above (only `tables`, when given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    con = duckdb.connect(str(tmp))
    want = (lambda t: tables is None or t in tables)
    try:
        con.execute("CREATE SCHEMA marts")
        con.execute(WILSON_SQL)
        if want("reaction_rate_by_cycle"):
            _rate_table(con, "reaction_rate_by_cycle", "cycle", "INT", BY_CYCLE)
        if want("reaction_rate_by_tumor_type"):
            _rate_table(con, "reaction_rate_by_tumor_type", "tumor_type", "VARCHAR", BY_TUMOR)
        if want("reaction_rate_by_regimen"):
            _rate_table(con, "reaction_rate_by_regimen", "regimen_class", "VARCHAR", BY_REGIMEN)
        if want("reaction_rate_by_site"):
            _rate_table(con, "reaction_rate_by_site", "site_id", "VARCHAR",
                        [r[:5] for r in by_site],
                        ", expected_reaction_infusions DOUBLE, observed_to_expected DOUBLE, "
                        "funnel_low INT, funnel_high INT, outside_funnel BOOLEAN",
                        [r[5:] for r in by_site])
        if want("rechallenge_outcomes"):
            con.execute("""CREATE TABLE marts.rechallenge_outcomes (protocol VARCHAR,
                premedicated BOOLEAN, index_grade_band VARCHAR,
                patients_with_index_reaction BIGINT, rechallenged BIGINT, tolerated BIGINT,
                breakthrough BIGINT, failed BIGINT)""")
            con.executemany("INSERT INTO marts.rechallenge_outcomes VALUES (?,?,?,?,?,?,?,?)",
                            RECHALLENGE)
            con.execute("""ALTER TABLE marts.rechallenge_outcomes ADD COLUMN success_rate DOUBLE;
                ALTER TABLE marts.rechallenge_outcomes ADD COLUMN ci_low DOUBLE;
                ALTER TABLE marts.rechallenge_outcomes ADD COLUMN ci_high DOUBLE;
                UPDATE marts.rechallenge_outcomes SET
                  success_rate = w_rate(tolerated + breakthrough, rechallenged),
                  ci_low = w_low(tolerated + breakthrough, rechallenged),
                  ci_high = w_high(tolerated + breakthrough, rechallenged)""")
        if want("irae_monthly"):
            con.execute("""CREATE TABLE marts.irae_monthly (month DATE, category VARCHAR,
                events BIGINT, grade3plus_events BIGINT, patients BIGINT,
                treated_patients BIGINT)""")
            con.executemany("INSERT INTO marts.irae_monthly VALUES (?,?,?,?,?,?)", IRAE)
        if want("literature"):
            con.execute("""CREATE TABLE marts.literature (publication_id VARCHAR, title VARCHAR,
                indication VARCHAR, study_type VARCHAR, key_finding VARCHAR,
                first_ingested_at TIMESTAMPTZ)""")
            con.executemany("INSERT INTO marts.literature VALUES (?,?,?,?,?,?)", LITERATURE)
        if want("submissions"):
            con.execute("""CREATE TABLE marts.submissions (site_id VARCHAR,
                submission_id VARCHAR, exported_at TIMESTAMPTZ, ingested_at TIMESTAMPTZ,
                status VARCHAR, reason VARCHAR, "rows" BIGINT, events BIGINT,
                duplicates BIGINT, quarantined BIGINT)""")
            con.executemany("INSERT INTO marts.submissions VALUES (?,?,?,?,?,?,?,?,?,?)",
                            SUBMISSIONS)
        if want("data_issues"):
            con.execute("""CREATE TABLE marts.data_issues (site_id VARCHAR, record_type VARCHAR,
                ref VARCHAR, issue VARCHAR, detail VARCHAR)""")
            con.execute("""INSERT INTO marts.data_issues VALUES ('SITE-B', 'reaction', 'R-77',
                'orphan', 'its infusion I-9 has not been received from this site')""")
        if want("build_info"):
            if build_info_json:
                con.execute("""CREATE TABLE marts.build_info AS SELECT
                    TIMESTAMPTZ '2025-02-16 10:00:00+00' AS built_at,
                    NULL::TIMESTAMPTZ AS as_of, ? AS events""",
                            [json.dumps({"patients": 12, "infusions": 40, "reactions": 7})])
            else:
                con.execute("""CREATE TABLE marts.build_info AS SELECT
                    TIMESTAMPTZ '2025-02-16 10:00:00+00' AS built_at,
                    TIMESTAMPTZ '2025-02-01 00:00:00+00' AS as_of,
                    12 AS patients, 40 AS infusions, 7 AS reactions""")
        con.execute("DROP MACRO w_rate; DROP MACRO w_low; DROP MACRO w_high")
    finally:
        con.close()
    os.replace(tmp, path)  # as the build publishes it
    return path


# ---------------------------------------------------------------------------- helpers


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SAFETY_LEDGER_HOME", str(tmp_path))
    return tmp_path


def warehouse_file(home: Path) -> Path:
    return home / "warehouse" / "safety.duckdb"


def run_page(page: str) -> AppTest:
    return open_page(None if page == "overview" else PAGES[page])


def charts(at: AppTest):
    return at.get("vega_lite_chart")


def table(at: AppTest, *columns: str):
    """The one dataframe on the page that has all these columns."""
    hits = [df.value for df in [*at.dataframe, *at.table] if set(columns) <= set(df.value.columns)]
    assert len(hits) == 1, f"{len(hits)} dataframes with columns {columns}"
    return hits[0]


def row(df, column: str, value) -> dict:
    hits = df[df[column].astype(str) == str(value)]
    assert len(hits) == 1, f"{column}={value!r}: {len(hits)} rows in\n{df}"
    return hits.iloc[0].to_dict()


# ---------------------------------------------------------------------------- pages


def test_overview_headlines_carry_their_denominators(home):
    write_warehouse(warehouse_file(home))
    at = run_page("overview")
    t = texts(at)
    assert "Reaction rate 15.0% (95% CI 7.1–29.1%) — 6 of 40 infusions" in t
    assert "Grade 3+ rate 5.0% (95% CI 1.4–16.5%) — 2 of 40 infusions" in t
    assert "Rechallenge success 75.0% (95% CI 30.1–95.4%) — 3 of 4 rechallenged patients" in t
    assert "5 patients with an index reaction, 1 not rechallenged" in t
    assert "12 patients with ≥1 current infusion, who received 40 infusions" in t
    assert "2 sites with current infusions; 2 sites have sent submissions" in t
    assert "3 accepted and 1 rejected of 4 submissions" in t
    assert "4 quarantined of 75 rows in accepted submissions (70 events, 1 duplicate dropped)" in t
    assert "1 record left out of the figures, at 1 site" in t
    # every rate carries its definition
    assert "Reaction rate = infusions with ≥1 current reaction / current infusions; " \
           "95% Wilson score interval." in t
    assert "Grade 3+ rate = infusions whose highest current reaction grade is ≥3" in t
    # freshness
    assert "**Warehouse built:** 2025-02-16 10:00 UTC" in t
    assert "**Events as of:** build time (every ingested event)" in t
    assert ("**Latest ingested submission:** 2025-02-16 09:00 UTC — `SITE-A` / "
            "`2025-02-15-001`, exported 2025-02-15 08:00 UTC, accepted") in t
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Reaction rate": "15.0%", "Grade 3+ rate": "5.0%", "Patients": "12",
                       "Rechallenge success": "75.0%", "Sites": "2",
                       "Submissions accepted / rejected": "3 / 1", "Quarantined rows": "4",
                       "Data issues": "1"}
    events = table(at, "Events table")
    assert dict(zip(events["Events table"], events["Events in this build"])) == {
        "patients": "12", "infusions": "40", "reactions": "7"}


def test_reaction_rates_page_charts_and_tables(home):
    write_warehouse(warehouse_file(home))
    at = run_page("reaction-rates")
    assert len(charts(at)) == 3
    t = texts(at)
    assert "All cycles: reaction rate 15.0% (95% CI 7.1–29.1%) — 6 of 40 infusions" in t
    assert "Reaction rate = infusions with ≥1 current reaction / current infusions" in t

    cyc = table(at, "Cycle")
    assert list(cyc["Cycle"]) == ["1", "2", "3", "4"]
    assert row(cyc, "Cycle", 1) == {
        "Cycle": "1", "Infusions": "12", "With reaction": "3", "Reaction rate": "25.0%",
        "Reaction rate 95% CI": "8.9–53.2%", "Grade 3+ infusions": "1", "Grade 3+ rate": "8.3%",
        "Grade 3+ 95% CI": "1.5–35.4%", "Patients": "12"}
    assert row(cyc, "Cycle", 4)["Reaction rate"] == "0.0%"  # 0 of 8 is a rate: 0
    tum = table(at, "Tumor type")
    assert list(tum["Tumor type"]) == ["cervical", "nsclc", "hcc"]  # by infusions
    assert row(tum, "Tumor type", "nsclc")["Reaction rate 95% CI"] == "4.7–44.8%"
    reg = table(at, "Regimen class")
    assert list(reg["Regimen class"]) == ["monotherapy", "chemotherapy", "chemo_bevacizumab",
                                          "chemo_tki"]
    tki = row(reg, "Regimen class", "chemo_tki")  # 0 infusions: no rate, never 0
    assert (tki["Infusions"], tki["Reaction rate"], tki["Reaction rate 95% CI"],
            tki["Grade 3+ rate"]) == ("0", "—", "—", "—")

    # the chart of the grade 3+ rate on request
    at.radio(key="rate_kind").set_value("Grade 3+ rate").run()
    assert not at.exception
    assert len(charts(at)) == 3
    assert "All cycles: grade 3+ rate 5.0% (95% CI 1.4–16.5%) — 2 of 40 infusions" in texts(at)


def test_reaction_rate_chart_draws_interval_and_leaves_out_null_rates(home):
    write_warehouse(warehouse_file(home))
    at = run_page("reaction-rates")
    spec = json.loads(charts(at)[2].proto.spec)  # by regimen class
    def mark(layer):
        return layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]

    assert {"errorbar", "point"} <= {mark(layer) for layer in spec["layer"]}
    # the groups drawn, in order: chemo_tki (0 infusions) has no rate, so no point
    point = next(layer for layer in spec["layer"] if mark(layer) == "point")
    assert point["encoding"]["y"]["sort"] == [
        "monotherapy (1/10)", "chemotherapy (4/22)", "chemo_bevacizumab (1/8)"]


def test_rechallenge_page(home):
    write_warehouse(warehouse_file(home))
    at = run_page("rechallenge")
    assert len(charts(at)) == 2  # tiers, success rate with CI
    t = texts(at)
    assert "Rechallenge success 75.0% (95% CI 30.1–95.4%) — 3 of 4 rechallenged patients" in t
    assert "1 of 5 patients with an index reaction had no later infusion (index grade 3+: 1)" in t
    tab = table(at, "Success")
    assert list(tab["Protocol"]) == ["extended", "standard", "stepwise", "not rechallenged"]
    std = row(tab, "Protocol", "standard")
    assert (std["Premedication"], std["Index grade"], std["Rechallenged"], std["Tolerated"],
            std["Breakthrough"], std["Failed"], std["Success"], std["Success rate"],
            std["95% CI"]) == ("premedicated", "1-2", "2", "1", "1", "0", "2 of 2", "100.0%",
                               "34.2–100.0%")
    nr = row(tab, "Protocol", "not rechallenged")
    assert (nr["Index reactions"], nr["Rechallenged"], nr["Success"],
            nr["Success rate"], nr["95% CI"]) == ("1", "0", "0 of 0", "—", "—")

    at.radio(key="rechallenge_grouping").set_value("Index grade band").run()
    assert not at.exception
    tab = table(at, "Success")
    assert dict(zip(tab["Index grade"], tab["Success"])) == {"1-2": "2 of 3", "3+": "1 of 1"}
    assert row(tab, "Index grade", "1-2")["95% CI"] == "20.8–93.9%"
    assert row(tab, "Index grade", "3+")["Index reactions"] == "2"

    at.radio(key="rechallenge_grouping").set_value("Premedication").run()
    tab = table(at, "Success")
    assert dict(zip(tab["Premedication"], tab["Success"])) == {
        "no premedication": "0 of 1", "premedicated": "3 of 3", "—": "0 of 0"}


def test_irae_trends_page(home):
    write_warehouse(warehouse_file(home))
    at = run_page("irae-trends")
    assert len(charts(at)) == 3  # events by category, grade 3+, treated patients
    t = texts(at)
    assert "7 irAE events** (2 grade 3+) with onset in 3 months (2025-01 to 2025-03)" in t
    assert "irAE month = calendar month of onset_date" in t
    monthly = table(at, "irAE events")
    assert monthly.to_dict("list") == {
        "Month": ["2025-01", "2025-02", "2025-03"], "irAE events": ["3", "2", "2"],
        "Grade 3+ events": ["0", "2", "0"], "Treated patients": ["8", "10", "11"]}
    detail = table(at, "Category")
    assert len(detail) == 5
    assert row(detail, "Category", "pneumonitis") == {
        "Month": "2025-02", "Category": "pneumonitis", "Events": "1", "Grade 3+ events": "1",
        "Patients": "1", "Treated patients": "10"}

    at.multiselect(key="irae_categories").set_value(["hepatitis"]).run()
    assert not at.exception
    assert table(at, "irAE events")["irAE events"].tolist() == ["1", "1", "0"]
    assert len(charts(at)) == 3

    at.multiselect(key="irae_categories").set_value([]).run()  # nothing chosen
    assert not at.exception
    assert "0 irAE events** (0 grade 3+)" in texts(at)
    assert len(charts(at)) == 1  # treated patients only


def test_sites_and_submissions_page(home):
    write_warehouse(warehouse_file(home))
    at = run_page("sites")
    assert len(charts(at)) == 2  # rates with CI, observed against the funnel
    t = texts(at)
    assert ("All sites: reaction rate 15.0% (95% CI 7.1–29.1%) — 6 of 40 infusions; "
            "0 of 2 sites outside the 99.8% funnel.") in t
    assert "Observed/expected = the site's infusions with a reaction" in t
    sites = table(at, "Funnel")
    a = row(sites, "Site", "SITE-A")
    assert (a["Infusions"], a["With reaction"], a["Reaction rate"], a["Reaction rate 95% CI"],
            a["Expected"], a["Observed/expected"], a["99.8% limits"], a["Funnel"]) == (
        "28", "6", "21.4%", "10.2–39.5%", "4.2", "1.43", "0–10", "within funnel")
    assert row(sites, "Site", "SITE-B")["Reaction rate 95% CI"] == "0.0–24.2%"

    subs = table(at, "Submission")
    assert len(subs) == 4
    assert list(subs["Submission"])[0] == "2025-02-15-001"  # latest ingested first
    rej = row(subs, "Submission", "2025-01-20-001")
    assert (rej["Status"], rej["Reason"], rej["Rows"]) == (
        "rejected", "sha256 of infusions.csv does not match the manifest", "—")
    b = row(subs, "Submission", "2025-01-21-001")
    assert (b["Rows"], b["Events"], b["Duplicates"], b["Quarantined"],
            b["Adds up"]) == ("25", "22", "0", "3", "✓")
    assert "3 accepted and 1 rejected of 4 submissions from 2 sites." in t

    issues = table(at, "Record type")
    assert issues[["Site", "Record type", "Ref", "Issue"]].values.tolist() == [
        ["SITE-B", "reaction", "R-77", "orphan"]]
    # the site picker offers the sites with issues; choosing one lists its records (a query
    # of its own, not a filter of rows already fetched)
    assert at.multiselect(key="issue_sites").options == ["SITE-B"]
    at.multiselect(key="issue_sites").set_value(["SITE-B"]).run()
    assert not at.exception
    assert table(at, "Record type")[["Site", "Ref"]].values.tolist() == [["SITE-B", "R-77"]]

    at.multiselect(key="subs_status").set_value(["rejected"]).run()
    assert list(table(at, "Submission")["Submission"]) == ["2025-01-20-001"]


def test_site_outside_funnel_is_flagged(home):
    outside = [BY_SITE[0][:9] + (True,), BY_SITE[1]]
    write_warehouse(warehouse_file(home), by_site=outside)
    at = run_page("sites")
    assert "1 of 2 sites outside the 99.8% funnel" in texts(at)
    assert row(table(at, "Funnel"), "Site", "SITE-A")["Funnel"] == "outside funnel"


def test_literature_page_filters(home):
    write_warehouse(warehouse_file(home))
    at = run_page("literature")
    assert "3 of 3 publications" in texts(at)
    lit = table(at, "Key finding")
    assert sorted(lit["ID"]) == ["PUB-001", "PUB-002", "PUB-003"]
    at.multiselect(key="lit_types").set_value(["phase3", "real_world"]).run()
    assert "2 of 3 publications" in texts(at)
    at.multiselect(key="lit_indications").set_value(["hcc"]).run()
    assert "1 of 3 publications" in texts(at)
    assert list(table(at, "Key finding")["ID"]) == ["PUB-003"]
    at.multiselect(key="lit_types").set_value([]).run()
    at.multiselect(key="lit_indications").set_value([]).run()
    at.text_input(key="lit_search").set_value("desensitization").run()
    assert list(table(at, "Key finding")["ID"]) == ["PUB-002"]
    at.text_input(key="lit_search").set_value("no such words").run()
    assert not at.exception
    assert "0 of 3 publications" in texts(at)


# ---------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("page", list(PAGES))
def test_missing_warehouse_is_explained_on_every_page(home, page):
    at = run_page(page)
    path = warehouse_file(home).resolve()
    warnings = [w.value for w in at.warning]
    assert warnings == [f"No warehouse yet at {path}. "
                        "Run `safety-ledger demo --no-dashboard` or `safety-ledger build`."]
    assert at.title[0].value == TITLES[page]
    assert not charts(at)
    assert not path.exists()  # the dashboard never creates it


@pytest.mark.parametrize("page", list(PAGES))
def test_warehouse_without_marts_is_explained_on_every_page(home, page):
    path = warehouse_file(home)
    path.parent.mkdir(parents=True)
    duckdb.connect(str(path)).close()  # an empty database file
    at = run_page(page)
    assert [w.value for w in at.warning][0].startswith(f"No warehouse yet at {path.resolve()}.")


@pytest.mark.parametrize("page", [p for p in PAGES if p != "literature"])
def test_missing_tables_are_named_not_a_traceback(home, page):
    write_warehouse(warehouse_file(home), tables={"literature"})
    at = run_page(page)
    infos = "\n".join(i.value for i in at.info)
    assert "has no `marts." in infos and "Run `safety-ledger build`" in infos


def test_unreadable_warehouse_is_explained(home):
    path = warehouse_file(home)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a duckdb file" * 100)
    at = run_page("overview")
    assert "could not be read" in at.warning[0].value


def test_zero_infusions_show_dashes_never_zero(home):
    empty_sites = [("SITE-A", 0, 0, 0, 0, None, None, None, None, None)]
    write_warehouse(warehouse_file(home), by_site=empty_sites)
    at = run_page("overview")
    t = texts(at)
    assert "Reaction rate — (no infusions, so no rate) — 0 of 0 infusions" in t
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Reaction rate"] == "—" and metrics["Grade 3+ rate"] == "—"
    at = run_page("sites")
    a = row(table(at, "Funnel"), "Site", "SITE-A")
    assert (a["Reaction rate"], a["Reaction rate 95% CI"], a["Observed/expected"]) == (
        "—", "—", "—")


def test_build_info_with_a_column_per_table(home):
    write_warehouse(warehouse_file(home), build_info_json=False)
    at = run_page("overview")
    assert "**Events as of:** 2025-02-01 00:00 UTC" in texts(at)
    events = table(at, "Events table")
    assert dict(zip(events["Events table"], events["Events in this build"])) == {
        "patients": "12", "infusions": "40", "reactions": "7"}


def test_a_rebuilt_warehouse_is_read_on_the_next_run(home):
    path = write_warehouse(warehouse_file(home))
    at = run_page("overview")
    assert "— 6 of 40 infusions" in texts(at)
    more = [("SITE-A", 30, 7, 2, 9, 4.5, 7 / 4.5, 0, 10, False), BY_SITE[1]]
    write_warehouse(path, by_site=more)  # replaced by rename, as the build does
    at.run()
    assert not at.exception
    assert "— 7 of 42 infusions" in texts(at)


def test_one_connection_per_file_identity_and_the_replaced_one_is_closed(home):
    """The dashboard keeps one read-only connection per (path, inode, mtime, size): the same
    object for the same file, a new one for a rebuilt file, and the old one closed."""
    from dashboard import data as dd

    path = write_warehouse(warehouse_file(home))
    sig1 = dd._signature(path)
    first = dd._connection(str(path), sig1)
    assert dd._connection(str(path), sig1) is first
    assert first.query("select count(*) as n from marts.reaction_rate_by_site")["n"][0] == 2
    more = [("SITE-A", 30, 7, 2, 9, 4.5, 7 / 4.5, 0, 10, False), BY_SITE[1],
            ("SITE-C", 1, 0, 0, 1, 0.1, 0.0, 0, 1, False)]
    write_warehouse(path, by_site=more)  # replaced by rename, as the build does
    sig2 = dd._signature(path)
    assert sig2 != sig1
    second = dd._connection(str(path), sig2)
    assert second is not first and first.closed and not second.closed
    assert second.query("select count(*) as n from marts.reaction_rate_by_site")["n"][0] == 3
    with pytest.raises(duckdb.Error):
        first.query("select 1")
    # a read-only connection: the file cannot be written through it
    with pytest.raises(duckdb.Error):
        second.query("create table marts.x (a int)")
