"""The main job without the dashboard: `safety-ledger demo --no-dashboard` into an empty
home publishes every marts-v1 table non-empty, the 30 publications, and GX Data Docs;
run again, it changes no figure (re-running anything is safe)."""
from __future__ import annotations

import duckdb
import pytest

from safety_ledger.cli import main

MARTS_V1 = ["reaction_rate_by_cycle", "reaction_rate_by_tumor_type", "reaction_rate_by_regimen",
            "reaction_rate_by_site", "rechallenge_outcomes", "irae_monthly", "literature", "submissions"]


# ingestion times are when the pipeline ran, not figures
TIMES = {"literature": " EXCLUDE (first_ingested_at, last_ingested_at)",
         "submissions": " EXCLUDE (ingested_at, first_ingested_at)"}


def snapshot(path):
    with duckdb.connect(str(path), read_only=True) as con:
        return {t: sorted(map(repr, con.execute(f"SELECT *{TIMES.get(t, '')} FROM marts.{t}").fetchall()))
                for t in MARTS_V1}


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("demo")
    assert main(["--home", str(home), "demo", "--no-dashboard"]) == 0
    return home


def test_every_marts_v1_table_is_published_non_empty(demo_home):
    with duckdb.connect(str(demo_home / "warehouse" / "safety.duckdb"), read_only=True) as con:
        counts = {t: con.execute(f"SELECT count(*) FROM marts.{t}").fetchone()[0] for t in MARTS_V1}
        assert all(n > 0 for n in counts.values()), counts
        assert counts["literature"] == 30
        # the seed site and the 4 synthetic sites (SITE-001..004)
        assert con.execute("SELECT list(site_id ORDER BY site_id) FROM marts.reaction_rate_by_site").fetchone()[0] \
            == ["SEED-CASES", "SITE-001", "SITE-002", "SITE-003", "SITE-004"]
        bad = con.execute("SELECT count(*) FROM marts.submissions WHERE rows != events + duplicates + quarantined")
        assert bad.fetchone()[0] == 0


def test_data_docs_exist(demo_home):
    index = demo_home / "data_docs" / "index.html"
    assert index.exists()
    assert "infusions" in index.read_text()


def test_demo_again_changes_no_figure(demo_home):
    before = snapshot(demo_home / "warehouse" / "safety.duckdb")
    assert main(["--home", str(demo_home), "demo", "--no-dashboard"]) == 0
    assert snapshot(demo_home / "warehouse" / "safety.duckdb") == before
