"""Literature beside the data (issue 5, item 5): the figures read from each publication's
key finding, the Literature page's tables, and a reported infusion-reaction rate drawn as a
labelled reference line on the Reaction rates page.

The literature format (samples/literature/README.md) has no numeric field: the expected
splits below are the seed paper's Table 3 "Key result" cells, divided by measure by hand.
"""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from appkit import open_page, texts
from dashboard import literature_figures as lf
from test_dashboard import write_warehouse



@pytest.mark.parametrize("text,expected", [
    ("ORR: Cervical 32%, ESCC 18%, HCC 17%", {"ORR": "Cervical 32%; ESCC 18%; HCC 17%"}),
    ("ORR 35%, PFS 8.6-9.8mo, OS up to 27mo", {"ORR": "35%", "PFS": "8.6-9.8mo", "OS": "up to 27mo"}),
    ("ORR 26%, 12mo OS 79%", {"ORR": "26%", "OS": "12mo OS 79%"}),
    ("PFS 12.7 vs 8.1mo; OS improved", {"PFS": "12.7 vs 8.1mo", "OS": "improved"}),
    ("ORR 52%, mOS 17mo", {"ORR": "52%", "OS": "mOS 17mo"}),
    ("pCR 21%, MPR 45%", {"Other": "pCR 21%; MPR 45%"}),
    ("ICER: $67,378/QALY", {"ICER": "$67,378/QALY"}),
    ("ICER: $70,220-75,944/QALY", {"ICER": "$70,220-75,944/QALY"}),  # commas inside a number
    ("Main registrational trial", {}),
    ("45 planned", {}),
    ("CR in HER2+ patient", {}),            # a named response, no figure
    ("CR for 10 months", {"Other": "CR for 10 months"}),
])
def test_figures_of_the_seed_table_3(text, expected):
    assert lf.figures(text) == expected


def test_reported_rates():
    [r] = lf.reported_rates("PUB-3", "Grade 3+ irAEs in 8% of patients.")
    assert (r.kind, r.grade, r.rate, r.per, r.label) == ("irae", "3+", 0.08, "patients",
                                                         "PUB-3: 8% of patients")
    a, b = lf.reported_rates("PUB-9", "Infusion-related reactions in 4.5% of patients, "
                                      "grade ≥3 1%; ORR 30%")
    assert (a.kind, a.grade, a.rate, a.per) == ("reaction", "any", 0.045, "patients")
    assert (b.kind, b.grade, b.rate, b.per) == ("reaction", "3+", 0.01, "not stated")
    assert lf.reported_rates("X", "ORR 35%, PFS 8.6-9.8mo") == []          # efficacy only
    assert lf.reported_rates("X", "Infusion-related reactions were uncommon") == []  # no %
    [c] = lf.reported_rates("X", "IRR in 12% of infusions")
    assert (c.kind, c.rate, c.per) == ("reaction", 0.12, "infusions")


# ---------------------------------------------------------------------------- the pages


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SAFETY_LEDGER_HOME", str(tmp_path))
    path = write_warehouse(tmp_path / "warehouse" / "safety.duckdb")
    con = duckdb.connect(str(path))
    con.executemany("INSERT INTO marts.literature VALUES (?, ?, ?, ?, ?, TIMESTAMPTZ '2025-01-13 00:00+00')", [
        ("PUB-009", "Cadonilimab with lenvatinib in HCC", "hcc", "phase2",
         "ORR 35%, PFS 8.6-9.8mo, OS up to 27mo"),
        ("PUB-010", "Cost-effectiveness of cadonilimab", "cervical", "health_economics",
         "ICER: $70,220-75,944/QALY"),
        ("PUB-011", "Safety of cadonilimab infusions", "cervical", "real_world",
         "Infusion-related reactions in 12.5% of patients, grade 3+ 2%"),
    ])
    con.close()
    return tmp_path


def test_literature_page_shows_the_reported_figures_and_rates(home):
    at = open_page("views/literature.py")
    figs = next(df.value for df in at.dataframe if "ORR" in df.value.columns)
    assert list(figs["ID"]) == ["PUB-009", "PUB-010"]
    assert figs.iloc[0][["ORR", "PFS", "OS", "ICER"]].tolist() == ["35%", "8.6-9.8mo",
                                                                   "up to 27mo", "—"]
    assert figs.iloc[1]["ICER"] == "$70,220-75,944/QALY"
    assert "2 publications of the 6 shown report a figure: ORR 1, PFS 1, OS 1, ICER 1." in texts(at)
    rates = next(df.value for df in at.dataframe if "As printed" in df.value.columns)
    # PUB-003 of the shared fixture: "Grade 3+ irAEs in 8% of patients."; PUB-011 two rates
    assert rates[["ID", "Event", "Grade", "Rate", "Denominator"]].values.tolist() == [
        ["PUB-003", "irAE", "3+", "8%", "patients"],
        ["PUB-011", "infusion-related reaction", "any", "12.5%", "patients"],
        ["PUB-011", "infusion-related reaction", "3+", "2%", "not stated"],
    ]
    # the filters narrow these tables too
    at.multiselect(key="lit_types").set_value(["health_economics"]).run()
    figs = next(df.value for df in at.dataframe if "ORR" in df.value.columns)
    assert list(figs["ID"]) == ["PUB-010"]


def reference_labels(at: AppTest) -> list[list[str]]:
    """Per chart, the labels of the literature reference lines drawn on it."""
    out = []
    for c in at.get("vega_lite_chart"):
        spec = json.loads(c.proto.spec)
        data = {ds.name: pa.ipc.open_stream(ds.data.data).read_all().to_pandas()
                for ds in c.proto.datasets}
        labels = []
        for layer in spec.get("layer", []):
            if layer.get("mark", {}).get("type") == "text" and "data" in layer:
                labels += list(data[layer["data"]["name"]]["label"])
        out.append(labels)
    return out


def test_reported_reaction_rate_is_a_reference_line_on_the_rate_charts(home):
    at = open_page("views/reaction_rates.py")
    assert reference_labels(at) == [["PUB-011: 12.5% of patients"]] * 3
    t = texts(at)
    assert "PUB-011: 12.5% of patients — “Infusion-related reactions in 12.5% of patients”" in t
    assert "per patient over the whole study; these charts are per infusion" in t
    # the grade 3+ charts get the grade 3+ figure
    at.radio(key="rate_kind").set_value("Grade 3+ rate").run()
    assert not at.exception
    assert reference_labels(at) == [["PUB-011: 2%"]] * 3


def test_no_reported_rate_draws_no_line(home):
    con = duckdb.connect(str(home / "warehouse" / "safety.duckdb"))
    con.execute("DELETE FROM marts.literature WHERE publication_id = 'PUB-011'")
    con.close()
    at = open_page("views/reaction_rates.py")
    assert reference_labels(at) == [[], [], []]
    assert "per patient over the whole study" not in texts(at)
