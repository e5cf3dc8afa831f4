"""The "Onset and severity" page under AppTest, on the warehouse built from the worked
example of tests/test_onset_marts.py (every figure below is worked out by hand there or
here)."""
from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from appkit import APP, frame, open_page, texts
from eventkit import build_home
from safety_ledger.home import Home
from test_onset_marts import write_events

PAGE = "views/onset.py"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SAFETY_LEDGER_HOME", str(tmp_path))
    return tmp_path


def chart_data(at: AppTest, index: int) -> list:
    c = at.get("vega_lite_chart")[index]
    return [pa.ipc.open_stream(ds.data.data).read_all().to_pandas() for ds in c.proto.datasets]


def test_onset_and_severity_page(home):
    write_events(Home(home))
    build_home(Home(home))
    at = open_page(PAGE)
    assert at.title[0].value == "Onset and severity"
    assert len(at.get("vega_lite_chart")) == 4  # onset, incidence, grades of reactions, of irAEs
    t = texts(at)
    # Reactions R1-R5: onsets 5, 10, 15, 20, 45 -> median 15, quartiles 10 and 20; 4 of 5
    # within 30 minutes.  Wilson 4/5: centre (0.8 + 0.384146) / 1.768292 = 0.669654,
    # half 1.959964 sqrt(0.032 + 0.038415) / 1.768292 = 0.294120 -> 37.6-96.4%
    assert ("**5 current reactions** in 3 patients: median onset 15 min (quartiles 10–20, "
            "range 5–45). Onset within 30 minutes 80.0% (95% CI 37.6–96.4%) — 4 of 5 "
            "reactions.") in t
    onset = frame(at, "Median (min)")
    irr1 = onset[(onset["Term"] == "infusion_related_reaction") & (onset["Grade"] == "1")].iloc[0]
    assert (irr1["Reactions"], irr1["Median (min)"], irr1["Quartiles (min)"],
            irr1["Range (min)"], irr1["Within 30 min"]) == ("2", "12.5", "8.75–16.25", "5–20", "2 of 2")

    # irAEs: 5 patients followed (P6 has no infusion); counted: hepatitis P1, P3; colitis P4;
    # thyroiditis P3 = 4; after the last infusion: P4's hepatitis (day 59 > 42).
    assert ("**5 patients** followed from the first dose to the last infusion; 4 first irAEs "
            "counted over 3 categories. Not counted: 1 first irAE with onset after the "
            "patient's last infusion, and irAEs of 1 patient with no current infusion.") in t
    assert "Kaplan EL, Meier P. J Am Stat Assoc 1958;53:457–481" in t
    assert "Greenwood M. The natural duration of cancer" in t
    inc = frame(at, "Cumulative incidence")
    hep = inc[inc["Category"] == "hepatitis"].iloc[0].to_dict()
    # 1 - S(42) = 0.625, CI 0.063645-1 (worked in test_onset_marts), median onset (10 + 42)/2
    assert hep == {"Category": "hepatitis", "Patients followed": "5", "irAEs counted": "2",
                   "Cumulative incidence": "62.5%", "95% CI": "6.4–100.0%", "By day": "42",
                   "Median onset (day)": "26", "After last infusion (not counted)": "1",
                   "Patients without infusion (not counted)": "1"}
    assert list(inc["Category"]) == ["hepatitis", "colitis", "thyroiditis"]  # most events first
    # the curve drawn: hepatitis steps 0 -> 0.25 (day 10) -> 0.625 (day 42)
    curve = next(df for df in chart_data(at, 1) if "cumulative_incidence" in df.columns)
    h = curve[curve["category"] == "hepatitis"].sort_values("day")
    assert list(h["day"]) == [0, 10, 21, 42]
    assert list(h["cumulative_incidence"]) == pytest.approx([0.0, 0.25, 0.25, 0.625])

    # Grade 3+ shares.  Reactions: R4 (grade 3) of 5: Wilson 1/5 = 0.330346 -/+ 0.294120
    # -> 3.6-62.4%.  irAEs: E3, E6 of 7: centre (2/7 + 3.841459/14) / 1.548780 = 0.361643,
    # half 1.959964 sqrt(0.029155 + 0.019599) / 1.548780 = 0.279424 -> 8.2-64.1%
    assert "Grade 3+ share of reactions 20.0% (95% CI 3.6–62.4%) — 1 of 5 reactions" in t
    assert "Grade 3+ share of irAEs 28.6% (95% CI 8.2–64.1%) — 2 of 7 irAEs" in t
    grades = frame(at, "Category", "Grade 1")
    assert list(grades["Category"]) == ["all", "hepatitis", "colitis", "thyroiditis"]
    row = grades[grades["Category"] == "hepatitis"].iloc[0]
    # 2 of 5 = 40.0%; Wilson 2/5: centre (0.4 + 0.384146) / 1.768292 = 0.443447,
    # half 1.959964 sqrt(0.048 + 0.038415) / 1.768292 = 0.325829 -> 11.8-76.9%
    assert row["Grade 1"] == "2 of 5 · 40.0% (11.8–76.9%)"
    assert row["Grade 5"] == "0 of 5 · 0.0% (0.0–43.4%)"

    at.multiselect(key="onset_categories").set_value(["colitis"]).run()
    assert not at.exception
    curve = next(df for df in chart_data(at, 1) if "cumulative_incidence" in df.columns)
    assert set(curve["category"]) == {"colitis"}


def test_page_is_in_the_navigation(home):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page(PAGE)
    at.run()
    # no warehouse: the frame's message under this page's title
    assert at.title[0].value == "Onset and severity"
    assert at.warning[0].value.startswith("No warehouse yet")


def test_a_warehouse_built_before_these_marts_explains_itself(home):
    path = home / "warehouse" / "safety.duckdb"
    path.parent.mkdir(parents=True)
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA marts; CREATE TABLE marts.literature (publication_id VARCHAR)")
    con.close()
    at = open_page(PAGE)
    infos = "\n".join(i.value for i in at.info)
    for table in ("reaction_onset", "irae_cumulative_incidence", "grade_distribution"):
        assert f"`marts.{table}`" in infos
    assert not at.get("vega_lite_chart")
