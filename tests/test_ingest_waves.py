"""Ingestion in waves: many submissions' rows validated by one GX run per file type.

The same landing is ingested twice: once as a single wave, and once with waves so small
that every submission is streamed alone and every chunk of 40 rows judged by its own GX run.
Both must agree with the generator's own account of what it wrote (rows, events,
duplicates, each invalid row's rule) and with each other, event for event.  The
generator's duplicates are re-sent rows of a site's earlier submission: they are only
recognised if a wave commits a site's submissions in order, each seeing the one before.
"""
from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timezone

import pyarrow.parquet as pq
import pytest

from safety_ledger import csv_reader, event_store, generator, ingest, ingest_workers, validation
from safety_ledger.home import Home
from safety_ledger.manifest import file_sha256

# lineage columns that differ between two ingests of the same input by design
VOLATILE = {"ingested_at"}


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    out = tmp_path_factory.mktemp("landing")
    summary = generator.generate(out, sites=2, patients=40, seed=11, submissions_per_site=2,
                                 duplicate_rate=0.05, correction_rate=0.05, retraction_rate=0.05,
                                 late_parent_rate=0.3, invalid_rate=0.1, progress=None)
    return out, summary


def _ingest(home_dir, landing_dir, monkeypatch, wave_bytes=None, chunk_rows=None, workers=None):
    """Ingest a copy of `landing_dir`; returns the home, the reports and every GX run as
    (file, rows validated) of this process. With `workers`, that many worker processes
    whatever the landing's size."""
    if wave_bytes is not None:
        monkeypatch.setattr(ingest, "WAVE_BYTES", wave_bytes)
    if chunk_rows is not None:
        real_reader = csv_reader.read_chunks
        monkeypatch.setattr(ingest, "read_chunks", lambda path, columns: real_reader(path, columns, size=chunk_rows))
    monkeypatch.setenv("SAFETY_LEDGER_SECRET", "waves-test-key")  # the same pseudonyms in every home
    runs, ended = [], []
    real = validation.validate

    def counting(home, spec, frame, run_name):
        try:
            return real(home, spec, frame, run_name)
        finally:
            runs.append((spec.file, len(frame)))
            ended.append(datetime.now(timezone.utc))

    monkeypatch.setattr(validation, "validate", counting)
    if workers is not None:
        monkeypatch.setattr(ingest_workers, "PARALLEL_MIN_BYTES", 0)
    home = Home(home_dir).ensure()
    shutil.copytree(landing_dir, home.landing, dirs_exist_ok=True)
    try:
        reports = ingest.ingest_landing(home, progress=lambda _m: None, workers=workers)
    finally:
        monkeypatch.undo()
    _ingest.last_gx_run_ended = max(ended, default=None)
    return home, reports, runs


def _rows(home, folder):
    out = []
    for f in sorted(folder.rglob("*.parquet")):
        if f.parent.name == "submissions":
            continue
        for row in pq.read_table(f).to_pylist():
            out.append((f.parent.name, tuple(sorted((k, repr(v)) for k, v in row.items() if k not in VOLATILE))))
    return sorted(out)


def test_one_wave_and_streamed_chunks_give_the_same_events(tmp_path, landing, monkeypatch):
    landing_dir, s = landing
    wave_home, wave_reports, wave_runs = _ingest(tmp_path / "wave", landing_dir, monkeypatch)
    stream_home, stream_reports, stream_runs = _ingest(tmp_path / "stream", landing_dir, monkeypatch,
                                                       wave_bytes=1, chunk_rows=40)

    for reports in (wave_reports, stream_reports):
        assert [r.status for r in reports] == ["accepted"] * len(s.submissions)
        assert sum(r.rows for r in reports) == s.total_rows
        assert sum(r.events for r in reports) == s.expected_events
        assert sum(r.duplicates for r in reports) == s.expected_duplicates
        assert sum(r.quarantined for r in reports) == s.expected_quarantined
    for home in (wave_home, stream_home):
        quarantined = {(d["site_id"], d["submission_id"], d["source_file"], d["source_row"], tuple(d["rules"]))
                       for f in home.quarantine.glob("*.parquet") for d in pq.read_table(f).to_pylist()}
        assert quarantined == {(x.site_id, x.submission_id, x.file, x.row, (x.rule,)) for x in s.invalid_rows}

    # one wave: one GX run per file type present, over every submission's rows of it
    files_present = {f.name for f in landing_dir.rglob("*.csv")}
    assert sorted(f for f, _ in wave_runs) == sorted(files_present)
    # streamed: one GX run per chunk of 40 rows (or fewer, at a file's end) of every file
    assert max(n for _, n in stream_runs) == 40
    assert len(stream_runs) >= sum(-(-r.rows // 40) for r in stream_reports)
    assert sum(n for _, n in wave_runs) == sum(n for _, n in stream_runs)

    # ingested_at (what `build --as-of` cuts on) is stamped when a submission is written,
    # after its wave's GX runs, not when the wave was opened
    wave_home, _reports, _runs = _ingest(tmp_path / "wave-again", landing_dir, monkeypatch)
    gx_done = _ingest.last_gx_run_ended
    assert gx_done is not None
    assert all(r["ingested_at"] >= gx_done for r in event_store.read_ledger(wave_home))

    assert _rows(wave_home, wave_home.events) == _rows(stream_home, stream_home.events)
    assert _rows(wave_home, wave_home.quarantine) == _rows(stream_home, stream_home.quarantine)


def _remanifest(folder):
    """Make manifest.json agree with the files again after a test changed one."""
    doc = json.loads((folder / "manifest.json").read_text())
    for name, entry in doc["files"].items():
        entry["sha256"] = file_sha256(folder / name)
    (folder / "manifest.json").write_text(json.dumps(doc))


def test_rejected_and_header_broken_submissions_in_a_wave_leave_the_others(tmp_path, landing, monkeypatch):
    """In one wave: a submission whose file no longer matches its checksum is rejected
    whole, another whose infusions.csv header has an unknown column has that file
    quarantined whole; every other file and submission lands as when alone."""
    landing_dir, s = landing
    copy = tmp_path / "landing"
    shutil.copytree(landing_dir, copy)
    corrupt = sorted(copy.glob("SITE-002/*/patients.csv"))[0]
    corrupt.write_bytes(corrupt.read_bytes() + b"\n")
    header = sorted(copy.glob("SITE-001/*/infusions.csv"))[-1]
    text = header.read_text().split("\n", 1)
    header.write_text(text[0] + ",extra\n" + text[1])
    _remanifest(header.parent)
    home, reports, runs = _ingest(tmp_path / "home", copy, monkeypatch)

    by_folder = {(r.site_id, r.submission_id): r for r in reports}
    rejected = by_folder.pop((corrupt.parent.parent.name, corrupt.parent.name))
    assert (rejected.status, rejected.rule) == ("rejected", "file.checksum")
    # only its ledger row (the record of the rejection), no event
    assert [p.parent.name for p in home.events.glob(f"*/{rejected.batch_id}.parquet")] == ["submissions"]
    broken = by_folder[(header.parent.parent.name, header.parent.name)]
    assert broken.status == "accepted"
    infusion_rows = sum(1 for _ in header.open()) - 1  # data rows under the (bad) header
    assert broken.files["infusions.csv"].quarantined == broken.files["infusions.csv"].rows == infusion_rows
    assert broken.files["infusions.csv"].error.endswith("[infusions.file.header]")
    assert {r.status for r in by_folder.values()} == {"accepted"}
    # the other three submissions' files, and the broken one's other files, were validated in the wave
    assert "infusions.csv" in {f for f, _ in runs}


def test_a_submission_rejected_part_way_leaves_no_versions_behind(tmp_path, landing, monkeypatch):
    """A streamed submission is rejected at its second file (infusions.csv turns out not
    to be UTF-8 when read, after its manifest was checked: changed on disk) once its
    patients were checked against the site's history; the same files sent again under a
    new submission_id in the same run land as if first seen: every valid row an event,
    none a duplicate of the rejected submission's rows."""
    landing_dir, s = landing
    copy = tmp_path / "landing"
    original = landing_dir / "SITE-002" / "2024-09-28-001"
    resent = copy / "SITE-002" / "2024-09-28-002"
    shutil.copytree(original, copy / "SITE-002" / original.name)
    shutil.copytree(original, resent)
    doc = json.loads((resent / "manifest.json").read_text())
    (resent / "manifest.json").write_text(json.dumps(dict(doc, submission_id=resent.name)))
    real_reader = csv_reader.read_chunks

    def unreadable_later(path, columns):
        if path.parent.name == original.name and path.name == "infusions.csv":
            raise csv_reader.FileRejected("file.encoding", f"{path.name} is not valid UTF-8 (byte 9)")
        return real_reader(path, columns)

    monkeypatch.setattr(ingest, "read_chunks", unreadable_later)
    home, reports, _runs = _ingest(tmp_path / "home", copy, monkeypatch, wave_bytes=1)
    first, again = reports
    assert (first.status, first.rule) == ("rejected", "file.encoding")
    sent = next(x for x in s.submissions if (x.site_id, x.submission_id) == ("SITE-002", original.name))
    invalid = [x for x in s.invalid_rows if (x.site_id, x.submission_id) == ("SITE-002", original.name)]
    assert sent.duplicates == 0   # its site's first submission
    assert again.status == "accepted"
    assert (again.rows, again.duplicates, again.quarantined) == (sum(sent.rows.values()), 0, len(invalid))
    assert again.events == sum(sent.rows.values()) - len(invalid)


def test_worker_processes_commit_what_one_process_commits(tmp_path, landing, monkeypatch):
    """The two sites shared between two worker processes (started although the landing is
    far below the size that starts them) give the same reports in landing order, the same
    events and the same quarantine as one process. The workers judge their rows, GX runs
    in the parent (one checkpoint run per file type and worker), which renders the pages
    and indexes them all."""
    landing_dir, s = landing
    one_home, one_reports, _ = _ingest(tmp_path / "one", landing_dir, monkeypatch)
    checkpoint_runs, real_run = [], validation.run_checkpoint

    def counted(home, file, values, run_name):
        checkpoint_runs.append(file)
        return real_run(home, file, values, run_name)

    monkeypatch.setattr(validation, "run_checkpoint", counted)   # undone by _ingest
    two_home, two_reports, parent_runs = _ingest(tmp_path / "two", landing_dir, monkeypatch, workers=2)

    assert sorted(ingest_workers.LAST_RUN["workers"]) == [1, 2]
    assert parent_runs == []  # every wave's rows were judged in a worker...
    files_present = {(f.parent.parent.name, f.name) for f in landing_dir.rglob("*.csv")}
    # ...and GX ran in this process: one checkpoint run per file type of each worker's site
    assert sorted(checkpoint_runs) == sorted(name for _, name in files_present)
    assert [r.as_dict() for r in two_reports] == [r.as_dict() for r in one_reports]
    assert _rows(two_home, two_home.events) == _rows(one_home, one_home.events)
    assert _rows(two_home, two_home.quarantine) == _rows(one_home, one_home.quarantine)
    # one wave per worker: a page per checkpoint run, each linked from the index
    pages = list((two_home.data_docs / "validations").rglob("*.html"))
    assert len(pages) == len(files_present)
    index = (two_home.data_docs / "index.html").read_text()
    assert {str(p.relative_to(two_home.data_docs)) for p in pages} == \
        set(re.findall(r'validations/[^"]*?\.html', index))


def test_a_worker_killed_mid_ingest_fails_the_ingest_and_a_rerun_finishes_it(tmp_path, landing, monkeypatch):
    """A worker killed as a power cut would (after writing a batch's files, before its
    ledger row) makes the ingest fail with the worker named; nothing half-written is
    visible, and the next ingest commits everything, exactly as one uninterrupted run."""
    landing_dir, s = landing
    one_home, one_reports, _ = _ingest(tmp_path / "one", landing_dir, monkeypatch)
    monkeypatch.setenv("SAFETY_LEDGER_FAULT", "before_ledger")
    with pytest.raises(RuntimeError, match=r"worker \d stopped \(exit code -9\) without a report"):
        _ingest(tmp_path / "two", landing_dir, monkeypatch, workers=2)
    # (_ingest's monkeypatch.undo() has removed the fault again; the same key as the others)
    monkeypatch.setenv("SAFETY_LEDGER_SECRET", "waves-test-key")
    home = Home(tmp_path / "two")
    assert event_store.read_ledger(home) == []   # each worker died before its first ledger row
    again = ingest.ingest_landing(home, progress=lambda _m: None, workers=2)
    assert [r.status for r in again] == ["accepted"] * len(s.submissions)
    assert _rows(home, home.events) == _rows(one_home, one_home.events)
    assert _rows(home, home.quarantine) == _rows(one_home, one_home.quarantine)


def test_a_run_that_stops_keeps_the_data_docs_of_the_waves_it_committed(tmp_path, landing, monkeypatch):
    """Each wave's Data Docs pages are rendered once it is committed: a run that stops in its
    second wave (its process gone, with what it held in memory) keeps the first wave's pages,
    and the next run, which skips that wave's submission, indexes them with its own."""
    landing_dir, s = landing
    home = Home(tmp_path / "home").ensure()
    shutil.copytree(landing_dir, home.landing, dirs_exist_ok=True)
    monkeypatch.setenv("SAFETY_LEDGER_SECRET", "waves-test-key")
    monkeypatch.setattr(ingest, "WAVE_BYTES", 1)   # each submission a wave of its own
    real, finished = ingest.finish_submission, []

    def stops_at_the_second(*args, **kwargs):
        if finished:
            raise RuntimeError("the run stops here")
        finished.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "finish_submission", stops_at_the_second)
    with pytest.raises(RuntimeError, match="the run stops here"):
        ingest.ingest_landing(home, progress=lambda _m: None, workers=1)
    monkeypatch.setattr(ingest, "finish_submission", real)
    monkeypatch.setattr(validation, "_pending_docs", {})    # a new process: nothing held over
    monkeypatch.setattr(validation, "_rendered_docs", {}, raising=False)
    again = ingest.ingest_landing(home, progress=lambda _m: None, workers=1)
    assert [r.status for r in again] == ["skipped"] + ["accepted"] * (len(s.submissions) - 1)

    pages = {str(p.relative_to(home.data_docs)) for p in (home.data_docs / "validations").rglob("*.html")}
    with_rows = [f for f in landing_dir.rglob("*.csv") if len(f.read_text().splitlines()) > 1]
    assert len(pages) == len(with_rows)   # one validation per file that has rows: the first run's too
    index = (home.data_docs / "index.html").read_text()
    assert set(re.findall(r'validations/[^"]*?\.html', index)) == pages


def test_when_a_worker_fails_the_parent_still_indexes_what_the_others_rendered(tmp_path, landing, monkeypatch):
    """Worker 2 fails at once (its submission folder is gone: an unexpected error, not a
    site's mistake); worker 1 ingests its site and renders its pages. The ingest fails
    naming worker 2, and the Data Docs index already lists worker 1's pages (a re-run
    would skip that site and not build it)."""
    landing_dir, s = landing
    home = Home(tmp_path / "home").ensure()
    shutil.copytree(landing_dir, home.landing, dirs_exist_ok=True)
    monkeypatch.setenv("SAFETY_LEDGER_SECRET", "waves-test-key")
    first_site = sorted(p for p in home.landing.iterdir())[0]
    subs = sorted(first_site.iterdir())
    groups = [[(i, f) for i, f in enumerate(subs)], [(len(subs), home.landing / "SITE-999" / "gone")]]
    with pytest.raises(RuntimeError, match=r"worker 2 failed"):
        ingest_workers.run_in_workers(home, groups, len(subs) + 1, progress=lambda _m: None)
    pages = {str(p.relative_to(home.data_docs)) for p in (home.data_docs / "validations").rglob("*.html")}
    # the site's two submissions are one wave: one validation per file type that has rows
    assert len(pages) == len({f.name for f in first_site.rglob("*.csv") if len(f.read_text().splitlines()) > 1}) == 5
    index = (home.data_docs / "index.html").read_text()
    assert set(re.findall(r'validations/[^"]*?\.html', index)) == pages



def test_when_gx_fails_in_the_parent_each_worker_fails_and_commits_nothing(tmp_path, landing, monkeypatch):
    """GX runs in the parent for the workers: where it raises (a suite GX cannot
    evaluate, say), each worker's wave fails with GX's own message, naming the file, and
    nothing of that wave is committed."""
    landing_dir, _ = landing

    def broken(home, file, values, run_name):
        raise RuntimeError(f"GX could not evaluate a rule on {file}")

    monkeypatch.setattr(validation, "run_checkpoint", broken)   # undone by _ingest
    with pytest.raises(RuntimeError) as failed:
        _ingest(tmp_path / "home", landing_dir, monkeypatch, workers=2)
    message = str(failed.value)
    assert "worker 1 failed" in message and "worker 2 failed" in message
    assert "GX in the parent process could not judge patients.csv" in message
    assert "GX could not evaluate a rule on patients.csv" in message
    assert event_store.read_ledger(Home(tmp_path / "home")) == []


def test_a_worker_whose_parent_is_gone_stops_waiting_for_gx():
    """A worker waits for the parent's verdict on its batch; if the parent process is gone
    (killed), the worker stops with a message saying so, rather than waiting for ever."""
    import queue
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()   # its pid names no process now
    gx = ingest_workers.GXInParent(0, queue.Queue(), queue.Queue(), gone.pid)
    gx.LOOK_EVERY = 0.05
    with pytest.raises(RuntimeError, match="parent process is gone"):
        gx.run_checkpoint("infusions.csv", None, "run")
    assert gx.messages.get_nowait() == ("judge", 0, "infusions.csv", None, "run")
