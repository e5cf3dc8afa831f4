"""The seed case series end to end through the command line: ingest the seed submission
and the literature drop, build, and compare every mart with the figures worked out by hand
in tests/seed_expected.py (from samples/README.md)."""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

import seed_expected as X
from safety_ledger.cli import main

REPO = Path(__file__).resolve().parents[1]
FIGURES = ("infusions", "reaction_infusions", "grade3plus_infusions", "patients")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    home = tmp_path_factory.mktemp("seed-home")
    shutil.copytree(REPO / X.LANDING_FOLDER, home / "landing" / X.SITE_ID / X.SUBMISSION_ID)
    shutil.copytree(REPO / X.LITERATURE_FOLDER, home / "literature" / Path(X.LITERATURE_FOLDER).name)
    assert main(["--home", str(home), "ingest"]) == 0
    assert main(["--home", str(home), "ingest-literature"]) == 0
    assert main(["--home", str(home), "build"]) == 0
    con = duckdb.connect(str(home / "warehouse" / "safety.duckdb"), read_only=True)
    yield con
    con.close()


def rows(con, sql):
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


@pytest.mark.parametrize("table,key,expected", [
    ("reaction_rate_by_cycle", "cycle", X.REACTION_RATE_BY_CYCLE),
    ("reaction_rate_by_tumor_type", "tumor_type", X.REACTION_RATE_BY_TUMOR_TYPE),
    ("reaction_rate_by_regimen", "regimen_class", X.REACTION_RATE_BY_REGIMEN),
])
def test_reaction_rates(warehouse, table, key, expected):
    got = {r[key]: {f: r[f] for f in FIGURES} for r in rows(warehouse, f"FROM marts.{table}")}
    assert got == expected


def test_site_row(warehouse):
    [r] = rows(warehouse, "FROM marts.reaction_rate_by_site")
    want = X.REACTION_RATE_BY_SITE[X.SITE_ID]
    assert r["site_id"] == X.SITE_ID
    for f, v in want.items():
        assert r[f] == pytest.approx(v) if isinstance(v, float) else r[f] == v, f


def test_rechallenge_outcomes(warehouse):
    got = {(r["protocol"], r["premedicated"], r["index_grade_band"]):
           {k: r[k] for k in X.RECHALLENGE[next(iter(X.RECHALLENGE))]}
           for r in rows(warehouse, "FROM marts.rechallenge_outcomes")}
    assert got == X.RECHALLENGE
    totals = rows(warehouse, """SELECT sum(patients_with_index_reaction) AS p, sum(rechallenged) AS r,
                                       sum(tolerated + breakthrough) AS s FROM marts.rechallenge_outcomes""")[0]
    assert (totals["p"], totals["r"], totals["s"]) == (4, 3, 3)  # the paper: cases 1, 2, 4 of 1-4


def test_wilson_intervals_match_the_hand_arithmetic(warehouse):
    c1 = rows(warehouse, "FROM marts.reaction_rate_by_cycle WHERE cycle = 1")[0]
    c5 = rows(warehouse, "FROM marts.reaction_rate_by_cycle WHERE cycle = 5")[0]
    site = rows(warehouse, "FROM marts.reaction_rate_by_site")[0]
    for r, w in [(c1, X.WILSON["cycle_1_reaction_rate"]), (c5, X.WILSON["cycle_5_reaction_rate"]),
                 (site, X.WILSON["overall_reaction_rate"])]:
        assert r["reaction_rate"] == pytest.approx(w["rate"])
        assert r["ci_low"] == pytest.approx(w["ci_low"], abs=X.WILSON_ABS_TOL)
        assert r["ci_high"] == pytest.approx(w["ci_high"], abs=X.WILSON_ABS_TOL)


def test_submission_and_literature(warehouse):
    [s] = rows(warehouse, "FROM marts.submissions")
    assert {k: s[k] for k in X.SUBMISSION} == X.SUBMISSION
    by_type = dict(warehouse.execute("SELECT study_type, count(*) FROM marts.literature GROUP BY 1").fetchall())
    assert by_type == X.LITERATURE_BY_STUDY_TYPE
    assert sum(by_type.values()) == X.LITERATURE_ROWS == 30
