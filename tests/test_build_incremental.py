"""Incremental build (issue 4 item 2): after each new batch, the warehouse built from the
previous one (`build(home)`, which starts from the published file when it may) holds
exactly what a full replay of the same batches holds (`build(home, incremental=False,
out=...)`): every table and view of every schema, every row, every value, bit for bit;
only `built_at` (marts.build_info) and the build's own bookkeeping (meta.build_state)
may differ (safety_ledger/warehouse_diff.py, which `make bench` also uses at 10 million
events).

The expected warehouse is the full replay, an independent computation: it reads every
event again, runs no scope logic, and is what the rest of the suite checks against the
contracts (tests/test_property.py against the plain-Python reference).

Batches are written directly as committed events (tests/eventkit.py), so sequences are
cheap: corrections (later and earlier recorded_at), corrections that move a reaction to
another infusion and an infusion to another patient, retractions of patients (cascade),
infusions and reactions, retractions before their record and of records never sent,
children before their parents (late parents), re-sent duplicates, rejected batches,
literature drops, irAE categories that appear and disappear.  Every test also asserts that the incremental path was taken, so it
cannot pass by falling back to a full replay.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import threading
from datetime import datetime, timezone
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventkit import (infusion, irae, patient, publication, reaction, retraction, write_batch,
                      write_literature_drop)
from safety_ledger import build as build_module
from safety_ledger.build import build
from safety_ledger.cli import main
from safety_ledger.home import Home
from safety_ledger.replay_check import build_and_verify
from safety_ledger.warehouse_diff import compare

QUIET = dict(progress=lambda _: None)


# ---------------------------------------------------------------------------- comparing


def step(home: Home, tmp: Path, label: str, *, expect: str | None = None, **kwargs) -> build_module.BuildSummary:
    """Build `home` incrementally (if allowed), then a full replay of the same batches
    beside it, and assert they are the same warehouse."""
    summary = build(home, **kwargs, **QUIET)
    if expect is not None:
        assert summary.mode == expect, (label, summary.mode, summary.reason)
    full = build(home, incremental=False, out=tmp / f"full-{label}.duckdb",
                 as_of=kwargs.get("as_of"), **QUIET)
    assert full.mode == "full"
    problems = compare(summary.path, full.path).differences
    assert not problems, f"after {label} ({summary.mode}: {summary.reason}):\n" + "\n".join(problems)
    assert summary.marts == full.marts and summary.events == full.events
    full.path.unlink()
    return summary


# ---------------------------------------------------------------------------- scenarios


def test_hand_written_sequence_equals_full_replay_after_every_batch(tmp_path):
    home = Home(tmp_path / "home")
    day = lambda d: f"2025-06-{d:02d}T00:00:00Z"
    # 1: an orphan infusion (its patient comes later), a reaction before its infusion,
    #    a retraction before its record, a patient with infusions, reactions and an irAE
    write_batch(home, "b01", site_id="SITE-A", ingested_at=day(1),
                patients=[patient("P1", first_dose_date="2025-01-05"),
                          patient("P2", tumor_type="nsclc", first_dose_date="2025-01-02")],
                infusions=[infusion("I1", "P1", cycle=1, started_at="2025-01-05T09:00:00+08:00"),
                           infusion("I2", "P1", cycle=2, started_at="2025-01-26T09:00:00+08:00",
                                    premedication=["dexamethasone"]),
                           infusion("I3", "P2", cycle=1, started_at="2025-01-02T00:30:00+08:00",
                                    combination=["paclitaxel", "carboplatin"]),
                           infusion("I4", "P3", cycle=1, started_at="2025-01-03T09:00:00+08:00")],
                reactions=[reaction("R1", "I1", grade=3), reaction("R2", "I3", grade=1),
                           reaction("R9", "I9", grade=2)],
                iraes=[irae("E1", "P1", onset_date="2025-02-03", grade=3)],
                retractions=[retraction("reaction", "R7")])
    summary = step(home, tmp_path, "b01", expect="full")
    assert summary.reason == "no previous warehouse"
    # 2: the late parent P3 (I4 stops being an orphan); a correction of I2 moving it to P2
    write_batch(home, "b02", site_id="SITE-A", ingested_at=day(2),
                patients=[patient("P3", tumor_type="hcc", first_dose_date="2025-01-03")],
                infusions=[infusion("I2", "P2", cycle=2, started_at="2025-01-23T09:00:00+08:00",
                                    recorded_at="2025-06-02T00:00:00Z")])
    step(home, tmp_path, "b02", expect="incremental")
    # 3: another site; a correction moving R1 from I1 to I2; an older correction of P1
    #    (does not replace the current version); the retracted R7 arrives
    write_batch(home, "b03", site_id="SITE-B", ingested_at=day(3),
                patients=[patient("P1", tumor_type="gastric_gej", first_dose_date="2025-01-01")],
                infusions=[infusion("I1", "P1", cycle=1, started_at="2025-01-01T09:00:00-05:00")],
                reactions=[reaction("R1", "I1", grade=2)])
    write_batch(home, "b04", site_id="SITE-A", ingested_at=day(4),
                patients=[patient("P1", first_dose_date="2025-02-01", recorded_at="2025-05-01T00:00:00Z")],
                reactions=[reaction("R1", "I2", grade=4, recorded_at="2025-06-04T00:00:00Z"),
                           reaction("R7", "I3", grade=2)])
    step(home, tmp_path, "b03-b04", expect="incremental")
    # 5: a rejected batch (its events never count) and a literature drop
    write_batch(home, "b05", site_id="SITE-A", ingested_at=day(5), status="rejected",
                reason="bad manifest", patients=[patient("P4")])
    write_literature_drop(home, "d01", [publication("PUB-1"), publication("PUB-2")], ingested_at=day(5))
    step(home, tmp_path, "b05-d01", expect="incremental")
    # 6: the parent I9 of the orphan R9 arrives; a re-sent duplicate of I3; a correction
    #    dating I3 before the first dose (a data issue; its reactions are left out)
    write_batch(home, "b06", site_id="SITE-A", ingested_at=day(6),
                infusions=[infusion("I9", "P2", cycle=3, started_at="2025-02-13T09:00:00+08:00"),
                           infusion("I3", "P2", cycle=1, started_at="2025-01-02T00:30:00+08:00",
                                    combination=["paclitaxel", "carboplatin"])])
    write_batch(home, "b07", site_id="SITE-A", ingested_at=day(7),
                infusions=[infusion("I3", "P2", cycle=1, started_at="2025-01-01T09:00:00+08:00",
                                    combination=["paclitaxel", "carboplatin"],
                                    recorded_at="2025-06-07T00:00:00Z")])
    step(home, tmp_path, "b06-b07", expect="incremental")
    # 8: retractions: patient P2 (takes I2, I3, I9 and their reactions), the infusion I4,
    #    a record never sent; a correction recorded after the retraction still does not count
    write_batch(home, "b08", site_id="SITE-A", ingested_at=day(8),
                retractions=[retraction("patient", "P2"), retraction("infusion", "I4"),
                             retraction("irae", "E5")])
    step(home, tmp_path, "b08", expect="incremental")
    write_batch(home, "b09", site_id="SITE-A", ingested_at=day(9),
                patients=[patient("P2", tumor_type="nsclc", recorded_at="2025-06-09T00:00:00Z")],
                iraes=[irae("E2", "P3", onset_date="2025-01-31"), irae("E5", "P1", category="colitis")])
    step(home, tmp_path, "b09", expect="incremental")
    # nothing new: still incremental, still the same
    step(home, tmp_path, "nothing-new", expect="incremental")


def test_full_replay_whenever_the_previous_warehouse_cannot_be_the_start(tmp_path, monkeypatch):
    home = Home(tmp_path / "home")
    write_batch(home, "b1", ingested_at="2025-06-01T00:00:00Z", patients=[patient("P1")],
                infusions=[infusion("I1", "P1")], reactions=[reaction("R1", "I1")])
    write_batch(home, "b2", ingested_at="2025-06-03T00:00:00Z",
                infusions=[infusion("I2", "P1", cycle=2, started_at="2025-01-31T09:00:00+08:00")])
    step(home, tmp_path, "first", expect="full")
    # an as_of earlier than a batch the previous warehouse holds: full
    s = step(home, tmp_path, "as-of", expect="full", as_of=datetime(2025, 6, 2, tzinfo=timezone.utc))
    assert "must not show" in s.reason
    # from that earlier view, the next build without as_of only adds b2
    s = step(home, tmp_path, "after-as-of", expect="incremental")
    assert s.new_batches == 1
    # a transform changed (here: a comment added to one model): full
    transforms = tmp_path / "transforms"
    shutil.copytree(build_module.TRANSFORMS_DIR, transforms)
    model = transforms / "core" / "infusion_outcomes.sql"
    model.write_text("-- changed\n" + model.read_text())
    monkeypatch.setattr(build_module, "TRANSFORMS_DIR", transforms)
    s = step(home, tmp_path, "transform-changed", expect="full")
    assert "changed" in s.reason
    monkeypatch.undo()
    step(home, tmp_path, "back", expect="full")
    step(home, tmp_path, "again", expect="incremental")
    # someone opened the published file read-write (a WAL beside it): full
    Path(f"{home.warehouse}.wal").write_bytes(b"")
    s = step(home, tmp_path, "wal", expect="full")
    assert "WAL" in s.reason
    # the previous warehouse gone: full
    home.warehouse.unlink()
    step(home, tmp_path, "gone", expect="full")
    # asked for a full replay
    assert build(home, incremental=False, **QUIET).mode == "full"


def test_equality_check_sees_a_difference(tmp_path):
    """The comparison itself can fail: a changed value, an empty list made NULL (DuckDB's
    hash() gives both the same value), a row twice (the multiset differs, the set does
    not), a view defined otherwise and a macro defined otherwise are each found, where
    they are."""
    home = Home(tmp_path / "home")
    write_batch(home, "b1", patients=[patient("P1")],
                infusions=[infusion("I1", "P1"), infusion("I2", "P1", cycle=2, started_at="2025-01-26T09:00:00+08:00")])
    a = build(home, **QUIET).path
    b = build(home, incremental=False, out=tmp_path / "b.duckdb", **QUIET).path
    same = compare(a, b)
    assert same.differences == []
    with duckdb.connect(str(a), read_only=True) as con:
        tables = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name <> 'meta'").fetchone()[0]
        views = con.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal AND schema_name <> 'meta'").fetchone()[0]
        infusion_rows = con.execute("SELECT count(*) FROM core.infusion_status").fetchone()[0]
    assert same.relations == tables + views and infusion_rows == 2 and same.rows >= infusion_rows

    def changed(sql: str) -> list[str]:
        c = tmp_path / "c.duckdb"
        shutil.copyfile(b, c)
        with duckdb.connect(str(c)) as con:
            con.execute(sql)
        return compare(a, c).differences

    problems = changed("UPDATE core.infusion_status SET cycle = 3 WHERE infusion_ref = 'I1'")
    assert [p[:p.index(",")] for p in problems] == ["core.infusion_status: 1 row(s) only in incremental",
                                                    "core.infusion_status: 1 row(s) only in full"]
    problems = changed("UPDATE core.infusion_status SET premedication = NULL WHERE infusion_ref = 'I1'")
    assert [p[:p.index(",")] for p in problems] == ["core.infusion_status: 1 row(s) only in incremental",
                                                    "core.infusion_status: 1 row(s) only in full"]
    problems = changed("INSERT INTO core.infusion_status SELECT * FROM core.infusion_status WHERE infusion_ref = 'I2'")
    assert len(problems) == 1 and problems[0].startswith("core.infusion_status: 1 row(s) only in full")
    problems = changed("CREATE OR REPLACE VIEW core.current_infusions AS "
                       "SELECT * EXCLUDE (status) FROM core.infusion_status WHERE cycle = 1")
    assert len(problems) == 1 and problems[0].startswith("core.current_infusions: 1 row(s) only in incremental")
    problems = changed("CREATE OR REPLACE MACRO grade_band(max_grade) AS "
                       "CASE WHEN max_grade >= 4 THEN '3+' ELSE '1-2' END")
    assert len(problems) == 1 and problems[0].startswith("macros differ: only incremental [('main', 'grade_band'")


def test_counts_by_difference_are_updated_not_recomputed(tmp_path, monkeypatch):
    """The aggregates of build.BY_DIFFERENCE are updated by difference, not recomputed: given
    a scope too narrow for them (only patients with a new patient version: none here), a
    new infusion of a known patient is missed, and the comparison with a full replay
    finds both tables wrong.  (With the real scope, every test above finds them equal.)"""
    home = Home(tmp_path / "home")
    write_batch(home, "b1", ingested_at="2025-06-01T00:00:00Z", patients=[patient("P1")],
                infusions=[infusion("I1", "P1", cycle=1, started_at="2025-01-05T09:00:00+08:00")])
    assert build(home, **QUIET).mode == "full"
    write_batch(home, "b2", ingested_at="2025-06-02T00:00:00Z",
                infusions=[infusion("I2", "P1", cycle=2, started_at="2025-02-05T09:00:00+08:00")])
    narrow = {name: dataclasses.replace(rule, reads={r: "scope_patient" for r in rule.reads})
              for name, rule in build_module.BY_DIFFERENCE.items()}
    monkeypatch.setattr(build_module, "BY_DIFFERENCE", narrow)
    summary = build(home, **QUIET)
    assert summary.mode == "incremental"
    full = build(home, incremental=False, out=tmp_path / "full.duckdb", **QUIET)
    problems = compare(summary.path, full.path).differences
    for table in ("core.reaction_counts", "core.treated_patients_by_month"):
        assert any(p.startswith(table + ":") for p in problems), (table, problems)


def test_build_verify_replay_proves_the_published_warehouse_or_publishes_a_replay(tmp_path, monkeypatch, capsys):
    """`safety-ledger build --verify-replay`: an incremental build is compared with a full
    replay of the same events; a build that was itself a full replay has nothing to check;
    with a defect planted in an incremental rule (the scope of
    test_counts_by_difference_are_updated_not_recomputed) the difference is reported,
    exit 1, and what is published is then a full replay.  A scratch folder left by a
    killed check is removed."""
    home = Home(tmp_path / "home")
    write_batch(home, "b1", ingested_at="2025-06-01T00:00:00Z", patients=[patient("P1")],
                infusions=[infusion("I1", "P1", cycle=1, started_at="2025-01-05T09:00:00+08:00")])
    cli = ["--home", str(home.root), "build", "--verify-replay"]
    assert main(cli) == 0
    assert "a full replay (no previous warehouse), so there was no incremental build to check" \
        in capsys.readouterr().out
    left = home.warehouse.parent / ".replay-check-killed"
    (left / "x").mkdir(parents=True)
    write_batch(home, "b2", ingested_at="2025-06-02T00:00:00Z", patients=[patient("P2")])
    assert main(cli) == 0
    assert "the incremental build (1 batch(es) committed since the previous build) is the same as a full " \
           "replay of the same events (" in capsys.readouterr().out
    assert not left.exists()
    write_batch(home, "b3", ingested_at="2025-06-03T00:00:00Z",
                infusions=[infusion("I2", "P1", cycle=2, started_at="2025-02-05T09:00:00+08:00")])
    narrow = {name: dataclasses.replace(rule, reads={r: "scope_patient" for r in rule.reads})
              for name, rule in build_module.BY_DIFFERENCE.items()}
    monkeypatch.setattr(build_module, "BY_DIFFERENCE", narrow)
    assert main(cli) == 1
    err = capsys.readouterr().err
    assert "the incremental build of" in err and "differed from a full replay of the same events:" in err
    assert "  core.reaction_counts: " in err and "A full replay is published instead" in err
    monkeypatch.undo()
    full = build(home, incremental=False, out=tmp_path / "full.duckdb", **QUIET)
    assert compare(home.warehouse, full.path).differences == []
    assert [p.name for p in home.warehouse.parent.iterdir() if "replay" in p.name] == []


def test_verify_replay_keeps_the_warehouse_until_its_check_is_done(tmp_path, monkeypatch):
    """An as-of build into the same file, started while --verify-replay replays the
    events, waits for the check to end: else it would publish b1 alone in between, and the
    check would compare that with the replay of b1 and b2 and call it a defect.  It says
    that it waits, then runs and publishes as asked."""
    home = Home(tmp_path / "home")
    write_batch(home, "b1", ingested_at="2025-06-01T00:00:00Z", patients=[patient("P1")])
    build(home, **QUIET)
    write_batch(home, "b2", ingested_at="2025-06-02T00:00:00Z", patients=[patient("P2")])
    as_of = datetime(2025, 6, 1, 12, tzinfo=timezone.utc)
    entered, other = threading.Event(), {}
    sweep = build_module._sweep_temporaries

    def sweep_and_say(target):   # called as soon as a build holds the target's lock
        if threading.current_thread().name == "as-of build":
            entered.set()
        return sweep(target)
    monkeypatch.setattr(build_module, "_sweep_temporaries", sweep_and_say)

    def as_of_build():
        other["said"] = []
        other["summary"] = build(home, as_of=as_of, progress=other["said"].append)
    thread = threading.Thread(target=as_of_build, name="as-of build")

    def progress(line):
        if line.startswith("full replay of the same events"):
            thread.start()
            if entered.wait(timeout=2):   # it got in: let it publish before the compare
                thread.join()
    check = build_and_verify(home, progress=progress)
    assert check.comparison is not None and check.ok, check.lines()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the as-of build did not finish after the check released the lock"
    assert other["summary"].as_of == as_of
    assert any(line.startswith(f"another build of {home.warehouse.resolve()} holds ") and
               line.endswith("waiting for it to finish") for line in other["said"]), other["said"]
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.patients").fetchone()[0] == 1   # b1 only: as of


def test_data_issues_are_recomputed_for_the_records_in_scope_only(tmp_path):
    """marts.data_issues is recomputed for the scope's records only (build.INCREMENTAL):
    a row of a record outside the scope stays as the previous build left it (here one
    planted in the previous file, which a whole recompute would drop), while the orphan
    issue of the infusion whose patient arrives, in scope, goes."""
    home = Home(tmp_path / "home")
    write_batch(home, "b1", ingested_at="2025-06-01T00:00:00Z", patients=[patient("P1")],
                infusions=[infusion("I4", "P3", cycle=1, started_at="2025-01-05T09:00:00+08:00")])
    first = build(home, **QUIET)
    assert first.mode == "full"
    with duckdb.connect(str(first.path)) as con:
        assert con.execute("SELECT ref, issue FROM marts.data_issues").fetchall() == [("I4", "orphan")]
        con.execute("INSERT INTO marts.data_issues VALUES ('SITE-Z', 'infusion', 'I-PLANTED', 'orphan', "
                    "'planted by the test', 'x', TIMESTAMPTZ '2025-06-01 00:00:00+00')")
    write_batch(home, "b2", ingested_at="2025-06-02T00:00:00Z", patients=[patient("P3")])
    second = build(home, **QUIET)
    assert second.mode == "incremental"
    with duckdb.connect(str(second.path), read_only=True) as con:
        assert con.execute("SELECT site_id, ref FROM marts.data_issues").fetchall() == [("SITE-Z", "I-PLANTED")]


# ---------------------------------------------------------------------------- random sequences

SITES = ("SITE-A", "SITE-B")
PATIENTS = ("P1", "P2", "P3", "P9")            # P9 only as a parent that is sent late or never
INFUSIONS = ("I1", "I2", "I3", "I4", "I9")
REACTIONS = ("R1", "R2", "R3")
IRAES = ("E1", "E2")
DAYS = ("2025-01-30", "2025-01-31", "2025-02-01", "2025-02-28", "2025-03-01")
STARTS = ("2025-01-31T09:00:00+08:00", "2025-02-01T00:30:00+08:00", "2025-02-28T23:30:00+08:00",
          "2025-03-01T09:00:00+08:00", "2025-01-30T23:30:00+08:00")
RECORDED = ("2025-05-01T00:00:00Z", "2025-06-15T00:00:00Z", "2025-07-01T00:00:00Z", None)

records = st.one_of(
    st.builds(lambda k, t, d, r: ("patients", patient(k, tumor_type=t, first_dose_date=d, recorded_at=r)),
              st.sampled_from(PATIENTS), st.sampled_from(("cervical", "nsclc", "hcc")),
              st.sampled_from(DAYS), st.sampled_from(RECORDED)),
    st.builds(lambda k, p, c, s, pre, comb, done, r: (
                  "infusions", infusion(k, p, cycle=c, started_at=s, premedication=pre,
                                        combination=comb, completed=done, recorded_at=r)),
              st.sampled_from(INFUSIONS), st.sampled_from(PATIENTS), st.integers(1, 3),
              st.sampled_from(STARTS), st.sampled_from(([], ["dexamethasone"])),
              st.sampled_from(([], ["paclitaxel"], ["apatinib", "bevacizumab"])), st.booleans(),
              st.sampled_from(RECORDED)),
    st.builds(lambda k, i, g, r: ("reactions", reaction(k, i, grade=g, recorded_at=r)),
              st.sampled_from(REACTIONS), st.sampled_from(INFUSIONS), st.integers(1, 4),
              st.sampled_from(RECORDED)),
    st.builds(lambda k, p, d, c, g, r: ("iraes", irae(k, p, onset_date=d, category=c, grade=g,
                                                      recorded_at=r)),
              st.sampled_from(IRAES), st.sampled_from(PATIENTS), st.sampled_from(DAYS),
              st.sampled_from(("hepatitis", "colitis", "pneumonitis")),
              st.integers(1, 3), st.sampled_from(RECORDED)),
    st.builds(lambda t, k, r: ("retractions", retraction(t, k, recorded_at=r)),
              st.sampled_from(("patient", "infusion", "reaction", "irae")),
              st.sampled_from(PATIENTS[:2] + INFUSIONS[:2] + REACTIONS[:1] + IRAES[:1]),
              st.sampled_from(RECORDED)),
)
batch = st.tuples(st.sampled_from(SITES), st.lists(records, min_size=1, max_size=8),
                  st.sampled_from(("accepted",) * 5 + ("rejected",)), st.booleans())


@settings(max_examples=int(os.environ.get("INCREMENTAL_EXAMPLES", "6")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(batch, min_size=2, max_size=4), st.data())
def test_random_batch_sequences_equal_full_replay(tmp_path_factory, batches, data):
    tmp = tmp_path_factory.mktemp("seq")
    home = Home(tmp / "home")
    sent: list[tuple[str, str, dict]] = []
    for n, (site, recs, status, resend) in enumerate(batches, start=1):
        tables: dict[str, list[dict]] = {}
        for table, rec in recs:
            tables.setdefault(table, []).append(rec)
            sent.append((site, table, rec))
        if resend and sent:  # a duplicate: an earlier record sent again, same content
            s, table, rec = data.draw(st.sampled_from(sent))
            if s == site:
                tables.setdefault(table, []).append(rec)
        write_batch(home, f"b{n:02d}", site_id=site, status=status,
                    ingested_at=f"2025-06-{n:02d}T00:00:00Z", **tables)
        step(home, tmp, f"b{n:02d}", expect="full" if n == 1 else "incremental")
