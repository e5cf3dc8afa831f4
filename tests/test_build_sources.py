"""Warehouse build: what counts as a committed event (ledger, as-of), the raw tables,
marts.submissions, marts.literature, marts.build_info and the marts-v1 column lists.

Every expected figure is worked out by hand from the events written here.
"""
from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import pytest

from eventkit import (build_home, infusion, one, patient, publication, reaction, rows, write_batch,
                      write_literature_drop)
from safety_ledger import event_schema
from safety_ledger.build import build
from safety_ledger.home import Home

UTC = timezone.utc

# marts-v1, "Tables": every listed column of every listed table.
RATE_COLUMNS = ["infusions", "reaction_infusions", "reaction_rate", "ci_low", "ci_high",
                "grade3plus_infusions", "grade3plus_rate", "patients"]
MARTS_V1 = {
    "reaction_rate_by_cycle": ["cycle"] + RATE_COLUMNS,
    "reaction_rate_by_tumor_type": ["tumor_type"] + RATE_COLUMNS,
    "reaction_rate_by_regimen": ["regimen_class"] + RATE_COLUMNS,
    "reaction_rate_by_site": ["site_id"] + RATE_COLUMNS + [
        "expected_reaction_infusions", "observed_to_expected", "outside_funnel"],
    "rechallenge_outcomes": ["protocol", "premedicated", "index_grade_band",
                             "patients_with_index_reaction", "rechallenged", "tolerated",
                             "breakthrough", "failed", "success_rate", "ci_low", "ci_high"],
    "irae_monthly": ["month", "category", "events", "grade3plus_events", "patients", "treated_patients"],
    "literature": ["publication_id", "title", "indication", "study_type", "key_finding", "first_ingested_at"],
    "submissions": ["site_id", "submission_id", "exported_at", "ingested_at", "status", "reason",
                    "rows", "events", "duplicates", "quarantined"],
    "data_issues": ["site_id", "record_type", "ref", "issue", "detail"],
    "build_info": ["built_at", "as_of"],
}
RAW_TABLES = ["patients", "infusions", "reactions", "iraes", "retractions", "literature",
              "submissions", "quarantine", "literature_drops"]


@pytest.fixture
def home(tmp_path) -> Home:
    return Home(tmp_path / "home")


def columns(path, schema: str, table: str) -> dict[str, str]:
    return {r["column_name"]: r["data_type"] for r in rows(
        path, "SELECT column_name, data_type FROM information_schema.columns "
              "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position", [schema, table])}


def test_empty_home_builds_every_table(home):
    path = build_home(home)
    # Every raw table exists, empty, with exactly the event schema's columns and types.
    con = duckdb.connect()
    try:
        for t in RAW_TABLES:
            assert one(path, f"SELECT count(*) AS n FROM raw.{t}")["n"] == 0
            con.register("empty", event_schema.schema(t).empty_table())
            expected = {r[0]: r[1] for r in con.execute("DESCRIBE empty").fetchall()}
            assert columns(path, "raw", t) == expected, t
    finally:
        con.close()
    # Every marts-v1 table exists with at least its listed columns, and no rows of figures.
    for table, cols in MARTS_V1.items():
        got = columns(path, "marts", table)
        assert set(cols) <= set(got), (table, set(cols) - set(got))
    assert one(path, "SELECT count(*) AS n FROM marts.reaction_rate_by_cycle")["n"] == 0
    assert columns(path, "marts", "irae_monthly")["month"] == "DATE"
    assert columns(path, "marts", "rechallenge_outcomes")["premedicated"] == "BOOLEAN"
    assert columns(path, "marts", "reaction_rate_by_site")["outside_funnel"] == "BOOLEAN"


def two_batches(home: Home) -> None:
    # Batch 1, ingested 2025-06-01: P1 cervical, I1 with reaction R1 (grade 1).
    write_batch(home, "b1", ingested_at="2025-06-01T00:00:00Z",
                patients=[patient("P1", tumor_type="cervical", recorded_at="2025-05-30T00:00:00Z")],
                infusions=[infusion("I1", "P1")], reactions=[reaction("R1", "I1")])
    # Batch 2, ingested 2025-06-10: P1 corrected to npc, I2 without reaction.
    write_batch(home, "b2", ingested_at="2025-06-10T00:00:00Z",
                patients=[patient("P1", tumor_type="npc", recorded_at="2025-06-09T00:00:00Z")],
                infusions=[infusion("I2", "P1", cycle=2, started_at="2025-01-31T09:00:00+08:00")])


def test_as_of_ignores_later_batches(home):
    two_batches(home)
    out = home.root / "board" / "as_of.duckdb"
    summary = build(home, as_of=datetime(2025, 6, 5, tzinfo=UTC), out=out, progress=lambda s: None)
    assert summary.path == out.resolve()
    # As of 2025-06-05 only batch 1 counts: cervical, 1 infusion, 1 with a reaction.
    assert summary.events["infusions"] == 1 and summary.events["patients"] == 1
    assert [(r["tumor_type"], r["infusions"], r["reaction_infusions"]) for r in
            rows(out, "SELECT * FROM marts.reaction_rate_by_tumor_type")] == [("cervical", 1, 1)]
    info = one(out, "SELECT * FROM marts.build_info")
    assert info["as_of"] == datetime(2025, 6, 5, tzinfo=UTC)
    assert (info["patients"], info["infusions"], info["reactions"], info["submissions"]) == (1, 1, 1, 1)
    # Everything: npc (P1's later correction), 2 infusions, 1 with a reaction.
    path = build_home(home)
    assert [(r["tumor_type"], r["infusions"], r["reaction_infusions"]) for r in
            rows(path, "SELECT * FROM marts.reaction_rate_by_tumor_type")] == [("npc", 2, 1)]
    assert one(path, "SELECT as_of FROM marts.build_info")["as_of"] is None
    # as_of exactly at batch 2's ingested_at includes it; a naive as_of is read as UTC.
    at = build(home, as_of=datetime(2025, 6, 10), out=out, progress=lambda s: None)
    assert at.as_of == datetime(2025, 6, 10, tzinfo=UTC)
    assert at.events["infusions"] == 2


def test_raw_events_are_views_over_the_files_of_the_build(home):
    two_batches(home)
    path = build_home(home)
    # Only the two ledgers are copied into the warehouse; every other raw table is a view.
    tables = {r["table_name"] for r in rows(
        path, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw'")}
    assert tables == {"submissions", "literature_drops"}
    views = {r["view_name"] for r in rows(
        path, "SELECT view_name FROM duckdb_views() WHERE schema_name = 'raw'")}
    assert views == {"patients", "infusions", "reactions", "iraes", "retractions",
                     "quarantine", "literature"}
    # The views list the files of the batches the build counted (b1, b2): a batch
    # committed after the build is not in the published warehouse until the next build.
    write_batch(home, "b3", ingested_at="2025-06-11T00:00:00Z",
                patients=[patient("P9")], infusions=[infusion("I9", "P9")])
    assert one(path, "SELECT count(*) AS n FROM raw.infusions")["n"] == 2
    assert one(path, "SELECT count(*) AS n FROM staging.stg_patients")["n"] == 2  # P1 twice
    path = build_home(home)
    assert one(path, "SELECT count(*) AS n FROM raw.infusions")["n"] == 3


def test_uncommitted_batch_files_are_ignored(home):
    two_batches(home)
    # A crash left events of batch b3 without its ledger file, and a half-written file
    # of batch b4 that is not even Parquet: neither is read.
    write_batch(home, "b3", commit=False, ingested_at="2025-06-11T00:00:00Z",
                patients=[patient("P9")], infusions=[infusion("I9", "P9")],
                reactions=[reaction("R9", "I9")], quarantine=[{}])
    (home.events / "infusions" / "b4.parquet").write_bytes(b"PAR1 truncated")
    lines: list[str] = []
    summary = build(home, progress=lines.append)
    # batches b1 + b2: 2 infusions, 1 patient (P1), 1 reaction; no quarantine rows.
    assert summary.events["infusions"] == 2
    assert summary.events["patients"] == 2  # two versions of P1
    assert summary.events["quarantine"] == 0
    assert one(summary.path, "SELECT sum(infusions) AS n FROM marts.reaction_rate_by_site")["n"] == 2
    assert any("5 uncommitted file(s) ignored" in line for line in lines), lines
    # Once b3's ledger row is written, it counts.
    write_batch(home, "b3", ingested_at="2025-06-11T00:00:00Z",
                patients=[patient("P9")], infusions=[infusion("I9", "P9")],
                reactions=[reaction("R9", "I9")], quarantine=[{}])
    (home.events / "infusions" / "b4.parquet").unlink()
    summary = build(home, progress=lambda s: None)
    assert summary.events["infusions"] == 3 and summary.events["quarantine"] == 1


def test_progress_lines_one_per_stage(home):
    two_batches(home)
    lines: list[str] = []
    build(home, progress=lines.append)
    assert [line.split(":")[0].split(" ")[0] for line in lines] == [
        "sources", "staging", "core", "marts", "published"]
    assert "infusions 2" in lines[0]
    assert "reaction_rate_by_cycle 2" in lines[3]


def test_submissions_mart_keeps_the_latest_ledger_row(home):
    # SITE-A / sub-1 first rejected (bad manifest), then re-sent and accepted as a new batch.
    write_batch(home, "r1", submission_id="sub-1", ingested_at="2025-06-01T00:00:00Z",
                status="rejected", reason="infusions.csv: sha256 does not match the manifest")
    write_batch(home, "a1", submission_id="sub-1", ingested_at="2025-06-02T00:00:00Z",
                patients=[patient("P1")], infusions=[infusion("I1", "P1")], duplicates=1,
                quarantine=[{"reason": "cycle out of range"}])
    # SITE-B / sub-1: a different submission (same id, other site), rejected.
    write_batch(home, "r2", site_id="SITE-B", submission_id="sub-1",
                ingested_at="2025-06-03T00:00:00Z", status="rejected", reason="bad site")
    path = build_home(home)
    got = {(r["site_id"], r["submission_id"]): r for r in rows(path, "SELECT * FROM marts.submissions")}
    assert sorted(got) == [("SITE-A", "sub-1"), ("SITE-B", "sub-1")]
    a = got[("SITE-A", "sub-1")]
    # the accepted batch a1: 2 events + 1 duplicate + 1 quarantined = 4 rows
    assert (a["status"], a["reason"], a["rows"], a["events"], a["duplicates"], a["quarantined"]) == (
        "accepted", None, 4, 2, 1, 1)
    assert a["ingested_at"] == datetime(2025, 6, 2, tzinfo=UTC)
    assert a["first_ingested_at"] == datetime(2025, 6, 1, tzinfo=UTC) and a["ledger_rows"] == 2
    assert got[("SITE-B", "sub-1")]["status"] == "rejected"
    # A rejected-only site has no accepted submission: no row in the site figures.
    assert [r["site_id"] for r in rows(path, "SELECT site_id FROM marts.reaction_rate_by_site")] == ["SITE-A"]
    assert one(path, "SELECT count(*) AS n FROM raw.quarantine")["n"] == 1


def test_literature_latest_version_and_first_ingestion(home):
    write_literature_drop(home, "d1", [publication("PUB-A", title="Old title", recorded_at="2025-05-01T00:00:00Z"),
                                       publication("PUB-B", study_type="phase3")],
                          ingested_at="2025-06-01T00:00:00Z")
    write_literature_drop(home, "d2", [publication("PUB-A", title="New title", study_type="review",
                                                   recorded_at="2025-05-20T00:00:00Z")],
                          ingested_at="2025-06-10T00:00:00Z")
    # an uncommitted drop is ignored
    write_literature_drop(home, "d3", [publication("PUB-C")], ingested_at="2025-06-11T00:00:00Z", commit=False)
    path = build_home(home)
    got = {r["publication_id"]: r for r in rows(path, "SELECT * FROM marts.literature")}
    assert sorted(got) == ["PUB-A", "PUB-B"]
    assert (got["PUB-A"]["title"], got["PUB-A"]["study_type"]) == ("New title", "review")
    assert got["PUB-A"]["first_ingested_at"] == datetime(2025, 6, 1, tzinfo=UTC)
    assert got["PUB-B"]["first_ingested_at"] == datetime(2025, 6, 1, tzinfo=UTC)
    # As of 2025-06-05, drop d2 did not exist yet.
    out = home.root / "asof.duckdb"
    build(home, as_of=datetime(2025, 6, 5, tzinfo=UTC), out=out, progress=lambda s: None)
    assert one(out, "SELECT title FROM marts.literature WHERE publication_id = 'PUB-A'")["title"] == "Old title"
