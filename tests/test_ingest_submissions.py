"""Whole-submission rules (manifest, checksums, headers...), versions of a record
(duplicate, correction, conflict), re-ingestion, and personal data."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from safety_ledger import event_store, ingest
from safety_ledger.event_store import VersionSet, version_texts
from safety_ledger.home import Home
from safety_ledger.ingest import ingest_landing
from safety_ledger.manifest import load_manifest
from safety_ledger.pseudonym import Pseudonymizer, load_key
from safety_ledger.submission_writer import write_submission
from safety_ledger.verify import verify

REC = "2025-03-22T18:00:00+08:00"
LATER = "2025-03-29T18:00:00+08:00"
PATIENT = dict(patient_ref="MRN-7777", sex="male", age_at_first_dose=77, tumor_type="nsclc",
               weight_kg=None, first_dose_date="2025-01-10", recorded_at=REC)
INFUSION = dict(infusion_ref="INF-1", patient_ref="MRN-7777", cycle=1, started_at="2025-03-22T09:40:00+08:00",
                dose_mg=250, planned_duration_min=60, protocol="standard", combination=None,
                premedication=None, completed="true", recorded_at=REC)
QUIET = dict(progress=lambda _: None)


@pytest.fixture
def home(tmp_path):
    return Home(tmp_path / "home")


def submit(home, sub, files, site="SITE-A"):
    return write_submission(home.landing, site, sub, "2025-03-23T08:00:00+08:00", files)


def only(reports, status=None):
    [r] = [r for r in reports if status is None or r.status == status]
    return r


def events(home, table):
    files = event_store.committed_files(home, table)
    if not files:
        return []
    return duckdb.connect().execute("SELECT * FROM read_parquet($f) ORDER BY recorded_at",
                                    {"f": files}).fetchdf().to_dict("records")


def written_files(home):
    return sorted(p for p in home.root.rglob("*") if p.is_file() and home.landing not in p.parents)


# --- whole-submission rules: rejected, with the reason, nothing of it an event -------------

def _rejected(home, rule):
    r = only(ingest_landing(home, **QUIET))
    assert r.status == "rejected"
    assert r.rule == rule, r.reason
    assert r.events == 0
    assert event_store.committed_files(home, "patients") == []
    [ledger] = event_store.read_ledger(home)
    assert (ledger["status"], ledger["rule"]) == ("rejected", rule)
    return r


def test_checksum_mismatch(home):
    folder = submit(home, "s1", {"patients.csv": [PATIENT]})
    with open(folder / "patients.csv", "ab") as f:
        f.write(b"MRN-8,male,60,nsclc,,2025-01-01,2025-03-22T18:00:00+08:00\r\n")
    r = _rejected(home, "file.checksum")
    assert "patients.csv" in r.reason and "send it again" in r.reason


def test_row_count_mismatch(home):
    folder = submit(home, "s1", {"patients.csv": [PATIENT]})
    m = json.loads((folder / "manifest.json").read_text())
    m["files"]["patients.csv"]["rows"] = 2
    (folder / "manifest.json").write_text(json.dumps(m))
    assert "has 1 data rows, manifest says 2" in _rejected(home, "file.row_count").reason


def test_listed_file_missing(home):
    folder = submit(home, "s1", {"patients.csv": [PATIENT], "infusions.csv": [INFUSION]})
    (folder / "infusions.csv").unlink()
    assert "infusions.csv" in _rejected(home, "file.missing").reason


def test_unlisted_csv(home):
    folder = submit(home, "s1", {"patients.csv": [PATIENT]})
    (folder / "iraes.csv").write_text("irae_ref\n")
    assert "iraes.csv" in _rejected(home, "file.unlisted").reason


def test_manifest_ids_disagree_with_folders(home):
    folder = submit(home, "s1", {"patients.csv": [PATIENT]})
    m = json.loads((folder / "manifest.json").read_text())
    m["site_id"] = "SITE-B"
    (folder / "manifest.json").write_text(json.dumps(m))
    assert "'SITE-B'" in _rejected(home, "manifest.site_id").reason


def test_manifest_not_json(home):
    folder = submit(home, "s1", {"patients.csv": [PATIENT]})
    (folder / "manifest.json").write_text("{not json")
    _rejected(home, "manifest.invalid_json")


def _with_header(folder, name, header, rows):
    """Replace one file of a written submission by rows under another header (the writer
    only writes the contract's columns), and list it in the manifest."""
    from safety_ledger.submission_writer import csv_bytes, sha256_hex
    data, n = csv_bytes(header, rows) if header else (b"", 0)
    (folder / name).write_bytes(data)
    m = json.loads((folder / "manifest.json").read_text())
    m["files"][name] = {"sha256": sha256_hex(data), "rows": n}
    (folder / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize("header,rows,says", [
    (list(PATIENT) + ["ssn"], [dict(PATIENT, ssn="123-45-6789")], "unknown column(s) ssn"),
    ([c for c in PATIENT if c != "sex"], [PATIENT], "missing column(s) sex"),
    (list(PATIENT) + ["sex"], [list(PATIENT.values()) + ["male"]], "repeated column(s) sex"),
])
def test_a_wrong_header_quarantines_every_row_of_its_file(home, header, rows, says):
    # "an unknown extra column is an error for the whole file": the file's rows are
    # quarantined with the reason, the submission's other files land (docs/contract-notes.md)
    folder = submit(home, "s1", {"patients.csv": [PATIENT], "infusions.csv": [INFUSION]})
    _with_header(folder, "patients.csv", header, rows)
    r = only(ingest_landing(home, **QUIET))
    assert (r.status, r.rows, r.events, r.duplicates, r.quarantined) == ("accepted", 2, 1, 0, 1)
    assert says in r.files["patients.csv"].error and says in r.line()
    assert "site SITE-A must fix this file" in r.line()
    [(rules, reason, row_json)] = duckdb.connect().execute(
        f"SELECT rules, reason, row_json FROM read_parquet('{home.quarantine}/*.parquet')").fetchall()
    assert rules == ["patients.file.header"] and says in reason
    assert "ssn" not in row_json and "123-45-6789" not in row_json and "MRN-7777" not in row_json
    assert len(events(home, "infusions")) == 1 and events(home, "patients") == []


def test_an_empty_file_has_no_rows_to_lose(home):
    folder = submit(home, "s1", {"patients.csv": [PATIENT], "infusions.csv": [INFUSION]})
    _with_header(folder, "infusions.csv", None, [])
    r = only(ingest_landing(home, **QUIET))
    assert (r.status, r.rows, r.events, r.quarantined) == ("accepted", 1, 1, 0)
    assert "infusions.csv is empty: it needs at least its header row" in r.line()


def test_bad_folder_name_rejected_before_opening(home):
    submit(home, "s.1", {"patients.csv": [PATIENT]})
    _rejected(home, "folder.submission_id")


def test_folder_without_manifest_waits(home):
    folder = submit(home, "s1", {"patients.csv": [PATIENT]})
    (folder / "manifest.json").unlink()
    r = only(ingest_landing(home, **QUIET))
    assert r.status == "waiting"
    assert event_store.read_ledger(home) == []


# --- versions of a record -------------------------------------------------------------

def test_duplicate_is_counted_and_dropped(home):
    submit(home, "s1", {"patients.csv": [PATIENT], "infusions.csv": [INFUSION]})
    submit(home, "s2", {"infusions.csv": [INFUSION, INFUSION]})  # re-sent twice
    reports = ingest_landing(home, **QUIET)
    s2 = next(r for r in reports if r.submission_id == "s2")
    assert (s2.rows, s2.events, s2.duplicates, s2.quarantined) == (2, 0, 2, 0)
    assert len(events(home, "infusions")) == 1


def test_versions_repeated_within_one_file_are_checked_against_its_first_row(home):
    """The same infusion three times in one file, all with one recorded_at: the first row
    is the version; the second, identical (250 written 250.0), is a duplicate; the third,
    with another dose, a conflict."""
    submit(home, "s1", {"patients.csv": [PATIENT],
                        "infusions.csv": [INFUSION, dict(INFUSION, dose_mg="250.0"), dict(INFUSION, dose_mg=200)]})
    s1 = only(ingest_landing(home, **QUIET))
    assert s1.files["infusions.csv"].rows == 3
    assert (s1.files["infusions.csv"].events, s1.files["infusions.csv"].duplicates,
            s1.files["infusions.csv"].quarantined) == (1, 1, 1)
    assert [v["dose_mg"] for v in events(home, "infusions")] == [250.0]
    q = duckdb.connect().execute(f"SELECT source_row, rules FROM read_parquet('{home.quarantine}/*.parquet')").fetchall()
    assert q == [(3, ["infusions.key.conflict"])]


def test_content_hash_is_the_sha256_of_the_canonical_texts(home):
    """The content hash is kept in every event and compared with every later row of the
    record: its text must not change with the code. Written by hand here: each column but
    recorded_at, joined by US; a number as its float text (1 -> 1.0), a timestamp as its
    UTC instant to the microsecond (a year before 1000 and an instant before 1970 too), an
    empty cell as NUL, a list as sent, patient_ref as its pseudonym. The same rows sent
    again with started_at at other offsets are the same content."""
    starts = {"INF-1": ("2025-03-22T09:40:00.25+08:00", "2025-03-22T01:40:00.250Z", "2025-03-22T01:40:00.250000"),
              "INF-2": ("0999-01-01T08:00+08:00", "0998-12-31T19:00:00-05:00", "0999-01-01T00:00:00.000000"),
              "INF-3": ("1969-12-31T23:59:59.5Z", "1970-01-01T00:59:59.500+01:00", "1969-12-31T23:59:59.500000")}
    combination = {"INF-3": "paclitaxel;carboplatin"}
    sent = [dict(INFUSION, infusion_ref=ref, started_at=first, combination=combination.get(ref))
            for ref, (first, _, _) in starts.items()]
    again = [dict(row, started_at=starts[row["infusion_ref"]][1]) for row in sent]
    submit(home, "s1", {"patients.csv": [PATIENT], "infusions.csv": sent})
    submit(home, "s2", {"infusions.csv": again})
    s1, s2 = ingest_landing(home, **QUIET)
    pseudonym = Pseudonymizer(load_key(home.key_file))("SITE-A", "MRN-7777")   # the key as ingest reads it
    expected = {ref: hashlib.sha256("\x1f".join(
        [ref, pseudonym, "1.0", utc, "250.0", "60.0", "standard",
         combination.get(ref, "\x00"), "\x00", "true"]).encode()).hexdigest()
        for ref, (_, _, utc) in starts.items()}
    assert {e["infusion_ref"]: e["content_hash"] for e in events(home, "infusions")} == expected
    assert (s1.events, s2.events, s2.duplicates, s2.quarantined) == (4, 0, 3, 0)


def test_correction_is_a_new_version(home):
    submit(home, "s1", {"patients.csv": [PATIENT], "infusions.csv": [INFUSION]})
    submit(home, "s2", {"infusions.csv": [dict(INFUSION, dose_mg=200, recorded_at=LATER)]})
    ingest_landing(home, **QUIET)
    versions = events(home, "infusions")
    assert [v["dose_mg"] for v in versions] == [250.0, 200.0]  # both kept, in recorded order


def test_conflict_is_quarantined_and_the_accepted_version_stays(home):
    submit(home, "s1", {"patients.csv": [PATIENT], "infusions.csv": [INFUSION]})
    submit(home, "s2", {"infusions.csv": [dict(INFUSION, dose_mg=200)]})  # same recorded_at
    reports = ingest_landing(home, **QUIET)
    s2 = next(r for r in reports if r.submission_id == "s2")
    assert (s2.events, s2.duplicates, s2.quarantined) == (0, 0, 1)
    assert [v["dose_mg"] for v in events(home, "infusions")] == [250.0]
    q = duckdb.connect().execute(f"SELECT rules FROM read_parquet('{home.quarantine}/*.parquet')").fetchall()
    assert q == [(["infusions.key.conflict"],)]


def test_reingesting_changes_nothing(home):
    submit(home, "s1", {"patients.csv": [PATIENT], "infusions.csv": [INFUSION]})
    ingest_landing(home, **QUIET)
    derived = ("gx", "data_docs", "cache")   # GX's own files, and what only saves work
    before = {p: p.read_bytes() for p in written_files(home) if not set(derived) & set(p.parts)}
    r = only(ingest_landing(home, **QUIET))
    assert r.status == "skipped"
    after = {p: p.read_bytes() for p in written_files(home) if not set(derived) & set(p.parts)}
    assert after == before


def test_the_ledger_is_read_from_its_cache_and_the_files_it_lacks(home, monkeypatch):
    submit(home, "s1", {"patients.csv": [PATIENT]})
    ingest_landing(home, **QUIET)
    submit(home, "s2", {"infusions.csv": [INFUSION]})
    ingest_landing(home, **QUIET)
    rows = event_store.read_ledger(home, cached=False)
    assert [r["submission_id"] for r in rows] == ["s1", "s2"]
    assert event_store.read_ledger(home) == rows        # the cache now holds both rows
    opened = []
    read_table = event_store.pq.read_table
    monkeypatch.setattr(event_store.pq, "read_table",
                        lambda path, *a, **k: opened.append(path.name) or read_table(path, *a, **k))
    assert event_store.read_ledger(home) == rows
    assert opened == ["submissions-ledger.parquet"]     # no ledger file opened
    # a ledger file that differs from what the cache holds: its row is read from the file
    first = event_store.table_dir(home, "submissions") / f"{rows[0]['batch_id']}.parquet"
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 1))
    opened.clear()
    assert event_store.read_ledger(home) == rows
    assert opened == ["submissions-ledger.parquet", first.name]
    # a cache that cannot be read, or of another layout, is read around
    cache = home.cache / "submissions-ledger.parquet"
    cache.write_bytes(b"not parquet")
    assert event_store.read_ledger(home) == rows
    event_store.write_table(cache, event_store.pq.read_table(cache).drop_columns(["reason"]))
    assert event_store.read_ledger(home) == rows


def test_verify_reads_the_ledger_files_and_a_missing_file_leaves_the_cached_rows(home, monkeypatch):
    submit(home, "s1", {"patients.csv": [PATIENT]})
    ingest_landing(home, **QUIET)
    submit(home, "s2", {"infusions.csv": [INFUSION]})
    ingest_landing(home, **QUIET)
    rows = event_store.read_ledger(home)                # the cache now holds both rows
    with monkeypatch.context() as m:
        m.setattr(event_store, "_cached_rows", lambda *a: pytest.fail("verify read the ledger cache"))
        assert verify(home).ok
    (event_store.table_dir(home, "submissions") / f"{rows[1]['batch_id']}.parquet").unlink()
    assert event_store.read_ledger(home) == rows[:1]


def test_an_accepted_submission_is_not_read_again_unless_its_folder_changed(home, monkeypatch):
    # its manifest identifies it: a run does not hash and count its files again (the cost of
    # every run would grow with the landing area) while its folder is as it was accepted
    folder = submit(home, "s1", {"patients.csv": [PATIENT], "infusions.csv": [INFUSION]})
    ingest_landing(home, **QUIET)
    checked = []
    monkeypatch.setattr(ingest, "load_manifest", lambda f, *a, **k: checked.append(f) or load_manifest(f, *a, **k))
    r = only(ingest_landing(home, **QUIET))
    assert r.status == "skipped" and r.reason.startswith("already ingested (accepted) on ")
    assert checked == []
    # a CSV rewritten, or one added, after acceptance: checked in full, and told (as before)
    (folder / "infusions.csv").write_text("garbled")
    assert only(ingest_landing(home, **QUIET)).rule == "submission.id_reused"
    assert checked == [folder]
    folder = submit(home, "s2", {"patients.csv": [PATIENT]})
    ingest_landing(home, **QUIET)
    (folder / "reactions.csv").write_text("late")
    assert next(r for r in ingest_landing(home, **QUIET) if r.submission_id == "s2").rule == "submission.id_reused"
    assert [row["status"] for row in event_store.read_ledger(home)] == ["accepted", "accepted"]


# --- personal data ----------------------------------------------------------------------

def test_no_raw_patient_ref_in_anything_written(home):
    bad = dict(INFUSION, infusion_ref="INF-2", cycle=0)  # quarantined: its row is kept, pseudonymized
    submit(home, "s1", {"patients.csv": [PATIENT], "infusions.csv": [INFUSION, bad],
                        "retractions.csv": [dict(record_type="patient", ref="MRN-7777", reason="wrong", recorded_at=LATER)]})
    ingest_landing(home, **QUIET)
    assert (home.data_docs / "index.html").exists()
    leaks = [p for p in written_files(home) if b"MRN-7777" in p.read_bytes()]
    assert leaks == []


def test_key_file_is_private_and_pseudonyms_are_stable(home, tmp_path, monkeypatch):
    monkeypatch.delenv("SAFETY_LEDGER_SECRET", raising=False)
    submit(home, "s1", {"patients.csv": [PATIENT], "infusions.csv": [INFUSION]})
    ingest_landing(home, **QUIET)
    assert stat.S_IMODE(os.stat(home.key_file).st_mode) == 0o600
    [p] = events(home, "patients")
    [i] = events(home, "infusions")
    assert p["patient_key"] == i["patient_key"] != "MRN-7777"
    # a second home with the same key from the environment gives the same pseudonym
    key = home.key_file.read_text()
    monkeypatch.setenv("SAFETY_LEDGER_SECRET", key)
    other = Home(tmp_path / "other")
    write_submission(other.landing, "SITE-A", "s9", "2025-03-23T08:00:00+08:00", {"patients.csv": [PATIENT]})
    ingest_landing(other, **QUIET)
    assert events(other, "patients")[0]["patient_key"] == p["patient_key"]
    assert not other.key_file.exists()
    # the pseudonym is HMAC-SHA256 under the key of "site_id US patient_ref", its first 24
    # hex digits after "P-": stores written before any change of code stay comparable
    def formula(site, ref):
        return "P-" + hmac.new(key.strip().encode(), f"{site}\x1f{ref}".encode(), hashlib.sha256).hexdigest()[:24]

    assert p["patient_key"] == formula("SITE-A", "MRN-7777")
    # and every later one a Pseudonymizer makes, whatever it made before
    pseudo = Pseudonymizer(key.strip().encode())
    refs = [("SITE-A", "MRN-7777"), ("SITE-A", "MRN-0002"), ("SITE-B", "MRN-7777"), ("SITE-A", "MRN-0002")]
    assert [pseudo(site, ref) for site, ref in refs] == [formula(site, ref) for site, ref in refs]


def test_a_rejected_submission_is_retried_once_the_site_fixes_it(home):
    folder = submit(home, "s1", {"patients.csv": [PATIENT], "infusions.csv": [INFUSION]})
    held_back = (folder / "infusions.csv").read_bytes()
    (folder / "infusions.csv").unlink()                        # the transfer is incomplete
    assert only(ingest_landing(home, **QUIET)).rule == "file.missing"
    assert only(ingest_landing(home, **QUIET)).status == "skipped"  # unchanged: not retried
    (folder / "infusions.csv").write_bytes(held_back)          # the site sends the file again
    r = only(ingest_landing(home, **QUIET))
    assert (r.status, r.events) == ("accepted", 2)
    assert [row["status"] for row in event_store.read_ledger(home)] == ["rejected", "accepted"]


def test_the_same_submission_under_another_name_adds_no_event(home):
    first = submit(home, "s1", {"patients.csv": [PATIENT], "infusions.csv": [INFUSION]})
    ingest_landing(home, **QUIET)
    copy = home.landing / "SITE-A" / "s1-copy"
    import shutil
    shutil.copytree(first, copy)
    m = json.loads((copy / "manifest.json").read_text())
    m["submission_id"] = "s1-copy"
    (copy / "manifest.json").write_text(json.dumps(m))
    r = only(ingest_landing(home, **QUIET), "accepted")
    assert (r.rows, r.events, r.duplicates, r.quarantined) == (2, 0, 2, 0)
    assert len(events(home, "patients")) == len(events(home, "infusions")) == 1


def test_each_version_meets_the_earlier_ones_whichever_way_it_is_looked_up():
    """against_history by hand: the site's history (accepted) and this submission's own
    earlier rows (seen) both count; a chunk without a version twice is answered for all
    rows at once, one with a version twice row by row, and both give the same answers."""
    def versions(pairs):
        return VersionSet(pa.array([t for t, _ in pairs], pa.string()), pa.array([h for _, h in pairs], pa.string()))

    def added(seen):
        return [(t, h) for v in seen.added for t, h in zip(v.texts.to_pylist(), v.hashes.to_pylist())]

    accepted = versions([("INF-1\x1f10", "a"), ("INF-2\x1f10", "b")])
    seen = ingest.Versions(accepted)
    seen.added.append(versions([("INF-3\x1f10", "c")]))   # an earlier file chunk of this submission
    rows = versions([("INF-1\x1f10", "a"), ("INF-4\x1f10", "d"), ("INF-2\x1f10", "x"), ("INF-3\x1f10", "c"),
                     ("INF-1\x1f20", "e")])             # duplicate, new, conflict, duplicate, new
    new, duplicates, conflicts = ingest.against_history(rows.texts, rows.hashes, seen, np.array([10, 10, 10, 10, 20]))
    assert (list(new), duplicates, conflicts) == ([1, 4], 2, [2])
    assert added(seen) == [("INF-3\x1f10", "c"), ("INF-4\x1f10", "d"), ("INF-1\x1f20", "e")]
    assert seen.accepted is accepted and accepted.texts.to_pylist() == ["INF-1\x1f10", "INF-2\x1f10"]   # untouched until committed

    seen = ingest.Versions(accepted)
    rows = versions([("INF-5\x1f10", "f"), ("INF-1\x1f10", "a"), ("INF-5\x1f10", "f"), ("INF-5\x1f10", "g"),
                     ("INF-2\x1f10", "y")])   # new, duplicate, duplicate of row 1, conflict, conflict
    new, duplicates, conflicts = ingest.against_history(rows.texts, rows.hashes, seen, np.array([10] * 5))
    assert (list(new), duplicates, conflicts) == ([0], 2, [3, 4])
    assert added(seen) == [("INF-5\x1f10", "f")]


def test_a_version_twice_is_found_among_the_rows_sharing_an_instant():
    """Only rows with the same recorded_at can hold the same version: instants all
    different, no repeat; an instant shared by two keys, no repeat; a key twice at one
    instant, a repeat (wherever the two rows are)."""
    texts = pa.array(["INF-1\x1f10", "INF-2\x1f10", "INF-1\x1f20", "INF-3\x1f30"])
    assert not ingest.a_version_repeats(texts.slice(2), np.array([20, 30]))
    assert not ingest.a_version_repeats(texts, np.array([10, 10, 20, 30]))
    texts = pa.array(["INF-1\x1f10", "INF-2\x1f30", "INF-3\x1f20", "INF-1\x1f10"])
    assert ingest.a_version_repeats(texts, np.array([10, 30, 20, 10]))
    assert not ingest.a_version_repeats(pa.array([], pa.string()), np.array([], dtype=np.int64))


def test_a_versions_text_is_its_key_and_microseconds():
    """The text a version is looked up by, built from the event columns at ingestion and
    from the stored events (event_store.versions): equal exactly when key and instant are."""
    texts = version_texts([pa.array(["infusion", "patient"]), pa.array(["R-1", "P-\x1f2"])],
                          pa.array([-5, 1_700_000_000_000_000], pa.int64()))
    assert texts.to_pylist() == ["infusion\x1fR-1\x1f-5", "patient\x1fP-\x1f2\x1f1700000000000000"]
