"""Ingestion of site submissions: landing folder -> events, duplicates, quarantine.

For each complete submission (one with manifest.json) not yet ingested:
  1. folder names and manifest checked; a failure rejects the submission whole;
  2. each CSV read in chunks; patient_ref pseudonymized at once (nothing after this
     sees it); a header that breaks the contract quarantines every row of its file;
  3. the GX suites run, once per file type over a whole wave of submissions, on the
     distinct values of its rows (validation.py: GX's cost is then mostly per run); a
     row that breaks a rule is quarantined with the rules;
  4. each valid row compared with the site's history by (key, recorded_at):
     same content -> counted duplicate, other content -> quarantined conflict;
  5. the batch committed (events, quarantine, then the ledger row), one per submission.
Every data row ends as exactly one of: event, duplicate, quarantined.
"""
from __future__ import annotations

import binascii
import bisect
import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import contract, event_schema, event_store, validation, values
from .csv_reader import Chunk, FileRejected, HeaderError, read_chunks, read_raw
from .event_store import VersionSet
from .home import Home
from .manifest import SubmissionRejected, check_names, load_manifest
from .pseudonym import Pseudonymizer, load_key

Progress = Callable[[str], None]


@dataclass
class FileCounts:
    rows: int = 0
    events: int = 0
    duplicates: int = 0
    quarantined: int = 0
    error: str | None = None         # an error for the whole file (its header), if any

    def add(self, other: "FileCounts") -> None:
        self.rows += other.rows
        self.events += other.events
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined


@dataclass(kw_only=True)
class Outcome:
    """What became of one batch (a site submission or a literature drop): the fields its
    report and its ledger row share."""
    status: str                      # accepted | rejected | skipped | waiting
    batch_id: str | None = None
    reason: str | None = None
    rule: str | None = None
    rows: int = 0
    events: int = 0
    duplicates: int = 0
    quarantined: int = 0

    def count(self, files) -> None:
        """Sum the counts of the batch's files (FileCounts) into this outcome."""
        for c in files:
            self.rows += c.rows
            self.events += c.events
            self.duplicates += c.duplicates
            self.quarantined += c.quarantined
        assert self.rows == self.events + self.duplicates + self.quarantined

    def ledger_row(self, manifest, ingested_at: datetime, **ids) -> dict:
        """The batch's ledger row: its ids, its manifest, this outcome and its counts."""
        return {"batch_id": self.batch_id, **ids,
                "manifest_sha256": manifest.sha256 if manifest else None,
                "exported_at": manifest.exported_at if manifest else None, "ingested_at": ingested_at,
                "status": self.status, "reason": self.reason, "rule": self.rule, "rows": self.rows,
                "events": self.events, "duplicates": self.duplicates, "quarantined": self.quarantined}


@dataclass(kw_only=True)
class SubmissionReport(Outcome):
    site_id: str
    submission_id: str
    files: dict[str, FileCounts] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        where = f"{self.site_id}/{self.submission_id}"
        if self.status == "accepted":
            file_errors = "".join(f"; {name}: {c.error} -- site {self.site_id} must fix this file and send "
                                  "its rows again in a new submission" for name, c in self.files.items() if c.error)
            return (f"accepted  {where}: {self.rows} rows = {self.events} events + {self.duplicates} "
                    f"duplicates + {self.quarantined} quarantined{file_errors}")
        if self.status == "rejected":
            return (f"REJECTED  {where}: {self.reason} [{self.rule}] -- site {self.site_id} must fix "
                    "and send the submission again; nothing of it was ingested")
        return f"{self.status:<9} {where}: {self.reason}"


def key_columns(spec: contract.FileSpec) -> list[str]:
    """The event columns of a record's key within its site (with recorded_at: a version)."""
    if spec.key is None:  # retractions: one per (record_type, ref, recorded_at)
        return ["record_type", "ref"]
    return ["patient_key" if spec.key == "patient_ref" else spec.key]


# the kinds whose event column and canonical text are made from the parsed values, not the cells
TYPED_KINDS = ("int", "float", "date", "timestamp")


def _event_column(kind: str, cells: pa.Array, typed: pd.Series | None) -> pa.Array:
    """One contract column of the valid rows as its event type."""
    if kind == "int":
        return pa.array(typed.astype("Int32"), type=pa.int32())
    if kind == "float":
        return pa.array(typed.astype("float64"), type=pa.float64())
    if kind == "date":
        return pa.array(typed, type=pa.timestamp("us")).cast(pa.date32())
    if kind == "timestamp":
        return pa.array(typed.dt.as_unit("us"), type=event_schema.TS)
    if kind == "bool":
        return pc.equal(cells, "true")
    if kind == "list":  # an empty cell is an empty list
        return _empty_where_null(pc.split_pattern(cells, ";"))
    return cells


def _empty_where_null(lists: pa.ListArray) -> pa.ListArray:
    """The lists with each null made an empty list. A null's range of values is empty as
    Arrow's kernels build it, so the lists are the same offsets without the null mask
    (pc.fill_null with an empty list copies every value: 0.4 s per million rows)."""
    offsets = lists.offsets.to_numpy()
    if lists.null_count and np.diff(offsets)[~lists.is_valid().to_numpy(zero_copy_only=False)].any():
        return pc.fill_null(lists.cast(event_schema.STR_LIST), pa.scalar([], type=event_schema.STR_LIST))
    return pa.ListArray.from_arrays(lists.offsets, lists.values, type=event_schema.STR_LIST)


def _utc_micros(typed: pd.Series) -> np.ndarray:
    """A typed timestamp column's microseconds since 1970 at UTC, read as integers (a
    difference of timestamps would go through pandas' nanoseconds, which end in 1677 and
    2262); a missing value reads as the smallest int64."""
    return typed.dt.tz_convert(None).dt.as_unit("us").to_numpy().view(np.int64)


def _canonical(kind: str, cells: pa.Array, typed: pd.Series | None) -> pa.Array:
    """A column as text that is equal exactly when the typed values are equal (375 and
    375.0 are the same dose), for the content hash that tells a duplicate from a conflict."""
    if kind in ("int", "float", "date"):
        # pandas' text of the value (375.0), made once per distinct value
        text = pa.array(validation.by_distinct(lambda v: v.astype("string"), typed), type=pa.string())
    elif kind == "timestamp":   # the UTC instant to the microsecond: 2024-01-01T00:20:00.000000
        text = values.utc_texts(_utc_micros(typed), typed.notna().to_numpy())
    else:
        text = cells
    return text   # an empty cell (null) is written NUL when the texts are joined


def record_events(spec: contract.FileSpec, chunk: Chunk, parsed, valid: np.ndarray) -> tuple[dict[str, pa.Array], pa.Array]:
    """The typed event columns and the content hash (SHA-256 hex of the canonical texts,
    NUL for an empty cell, joined by US) of the valid rows of a chunk (`valid`: true at
    each well-formed row that is valid)."""
    columns: dict[str, pa.Array] = {}
    canonical = []
    for c in spec.columns:
        cells = chunk.columns[c.name].filter(valid)
        typed = parsed.typed[c.name].iloc[valid] if c.kind in TYPED_KINDS else None
        name = "patient_key" if c.name == "patient_ref" else c.name
        columns[name] = _event_column(c.kind, cells, typed)
        if c.name == "started_at":
            columns["started_local_date"] = pc.strptime(pc.utf8_slice_codeunits(cells, 0, 10),
                                                        format="%Y-%m-%d", unit="s").cast(pa.date32())
        if c.name != "recorded_at":
            canonical.append(_canonical(c.kind, cells, typed))
    joined = pc.binary_join_element_wise(*canonical, "\x1f", null_handling="replace", null_replacement="\x00")
    return columns, _sha256(joined)


def _sha256(texts: pa.Array) -> pa.Array:
    """SHA-256 hex of each text's UTF-8 bytes (none null): the digests joined, written in hex
    at once, and cut every 64 characters."""
    sha256 = hashlib.sha256
    digests = b"".join([sha256(b).digest() for b in texts.cast(pa.binary()).to_pylist()])
    return values.fixed_width_texts(np.frombuffer(binascii.hexlify(digests), dtype=np.uint8).reshape(len(texts), 64))


NOT_PATIENT = ("infusion", "reaction", "irae")


def pseudonymize_cells(spec: contract.FileSpec, site_id: str, chunk: Chunk, pseudo: Pseudonymizer) -> None:
    """Replace every raw patient reference in place, before anything else reads the rows.
    A retraction's ref is a raw patient_ref when it retracts a patient (or when its
    record_type is unreadable: we cannot tell, so we protect it)."""
    cols = chunk.columns
    if "patient_ref" in cols:
        cols["patient_ref"] = pseudo.column(site_id, cols["patient_ref"])
    if spec.file == "retractions.csv":
        other_record = pc.fill_null(pc.is_in(cols["record_type"], pa.array(NOT_PATIENT)), False)
        cols["ref"] = pc.if_else(other_record, cols["ref"], pseudo.column(site_id, cols["ref"]))
    for row in chunk.misshapen:
        if "patient_ref" in row.cells:
            row.cells["patient_ref"] = pseudo(site_id, row.cells["patient_ref"])
        if spec.file == "retractions.csv" and row.cells.get("record_type") not in NOT_PATIENT:
            row.cells["ref"] = pseudo(site_id, row.cells.get("ref"))


def _folder_fingerprint(folder: Path) -> str:
    """Identity of a submission whose manifest failed: its files' names, sizes and
    modification times, so that a site's fix (a missing file arriving, a re-sent file)
    makes it a new attempt, while an unchanged folder is not retried on every run."""
    parts = [f"{p.name}:{p.lstat().st_size}:{p.lstat().st_mtime_ns}" for p in sorted(folder.iterdir())]
    return "folder:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def batch_id_of(*parts: str) -> str:
    """A batch's id, derived from what it is: re-running the same input gives the same id."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


class Quarantine:
    def __init__(self, batch_id: str, site_id: str, submission_id: str, ingested_at: datetime):
        self.rows: list[dict] = []
        self._base = dict(batch_id=batch_id, site_id=site_id, submission_id=submission_id, ingested_at=ingested_at)

    def add(self, file: str, number: int, cells: dict, rules: list[str], reason: str) -> None:
        self.rows.append(dict(self._base, source_file=file, source_row=number, rules=rules,
                              reason=f"{file} row {number}: {reason}",
                              row_json=json.dumps(cells, ensure_ascii=False, sort_keys=True)))

    def drain(self) -> pa.Table:
        """The rows collected so far, as a table; the collection starts empty again."""
        table = pa.Table.from_pylist(self.rows, schema=event_schema.QUARANTINE)
        self.rows = []
        return table


def _violation_reason(cells: dict, violations) -> str:
    parts = []
    for v in violations:
        column = v.rule.split(".")[1]
        parts.append(f"{v.explain} (found {cells.get(column)!r})" if column in cells else v.explain)
    return "; ".join(parts)


# CSV bytes of the submissions whose rows one GX run per file type validates (shared
# among the worker processes). GX's cost is per run, so the wave is as large as memory
# allows. With GX in the parent process only, a worker holds about 250 MB less: on the
# 10m bench landing (1.3 GB of CSV, two workers), 640 MiB makes 4 waves in all (2 per
# worker; 6 at 448 MiB), the ingest 42.0 s against 43.8 s at 448 MiB; each worker peaks
# at 1.70-1.72 GB (3.84 GB summed with the parent's 0.30 and the forkserver's 0.12, under
# the 4 GiB target). One process alone (workers=1): 82 s, peak 3.70 GB.
WAVE_BYTES = 640 * 2**20


@dataclass
class Part:
    """One chunk of one file, pseudonymized and parsed, then given its verdict: the rules
    each of its rows broke (row number -> violations; rows with none are absent)."""
    spec: contract.FileSpec
    chunk: Chunk
    parsed: validation.Parsed
    broken: dict[int, list] | None = None


def read_parts(spec: contract.FileSpec, path: Path, site_id: str | None,
               pseudo: Pseudonymizer | None) -> Iterator[Part]:
    """The file's rows chunk by chunk, patient_ref pseudonymized before anything reads
    them. Raises HeaderError before the first chunk, FileRejected part-way."""
    for rows in read_chunks(path, spec.column_names):
        if pseudo is not None:
            pseudonymize_cells(spec, site_id, rows, pseudo)
        yield Part(spec, rows, validation.frame_for(spec, rows.numbers, rows.columns))


def judge(home: Home, parts: list[Part], run_name: str) -> None:
    """Validate the rows of many parts with one GX run per file type (GX's cost is mostly
    per run, not per row), and hand each part the rules its own rows broke."""
    by_file: dict[str, list[Part]] = {}
    for part in parts:
        by_file.setdefault(part.spec.file, []).append(part)
    for group in by_file.values():
        frame = pd.concat([p.parsed.frame for p in group], ignore_index=True)
        frame.index.name = "row_in_run"
        broken = validation.validate(home, group[0].spec, frame, run_name)
        starts = [0]
        for p in group:
            p.broken = {}
            starts.append(starts[-1] + len(p.parsed.frame))
        for position, violations in broken.items():
            i = bisect.bisect_right(starts, position) - 1
            part = group[i]
            part.broken[int(part.parsed.frame.index[position - starts[i]])] = violations


class Versions:
    """The versions a submission adds to one table of its site (`added`, a VersionSet per
    part), over `accepted`: the site's versions accepted before, left as they are until
    the submission is committed (History.keep)."""

    def __init__(self, accepted: VersionSet):
        self.accepted = accepted
        self.added: list[VersionSet] = []

    def earlier(self, texts: pa.Array) -> pa.Array:
        """The content hash of each version accepted or added before, null where none:
        one vectorized lookup per layer (a version is in one layer at most)."""
        found = pa.nulls(len(texts), pa.string())
        for layer in (self.accepted, *self.added):
            if len(layer.texts):
                found = pc.coalesce(found, layer.hashes.take(pc.index_in(texts, value_set=layer.texts)))
        return found

    def all(self) -> VersionSet:
        """The accepted versions and the added ones, as one set."""
        layers = [self.accepted, *self.added]
        return VersionSet(pa.concat_arrays([v.texts for v in layers]), pa.concat_arrays([v.hashes for v in layers]))


def a_version_repeats(texts: pa.Array, instants: np.ndarray) -> bool:
    """Whether a version (its text) is twice in the rows, `instants` being each row's
    recorded_at in microseconds. Equal versions have equal instants (the instant is part
    of the text), so only the texts of rows sharing an instant are compared: sorting the
    instants costs about a twentieth of hashing every text (2 against 48 ms a 200,000 rows)."""
    ordered = np.sort(instants)
    shared = ordered[1:][ordered[1:] == ordered[:-1]]
    if not len(shared):
        return False
    texts = texts.filter(pa.array(np.isin(instants, shared)))
    return pc.count_distinct(texts, mode="all").as_py() < len(texts)


def against_history(texts: pa.Array, hashes: pa.Array, seen: Versions,
                    instants: np.ndarray) -> tuple[np.ndarray, int, list[int]]:
    """Each row's version (its text: event_store.version_texts, `instants` its recorded_at
    in microseconds) against the earlier ones (`seen`, and the rows before it): (the rows
    that are new versions, added to `seen`; how many rows are duplicates, whose content
    hash equals the earlier version's; the rows in conflict, whose content hash differs).
    The earlier versions are looked up for all rows at once; where no version is twice in
    the rows, that is each row's answer, else the rows are taken in order, each meeting
    the new ones before it."""
    earlier = seen.earlier(texts)
    if not a_version_repeats(texts, instants):
        known = earlier.is_valid().to_numpy(zero_copy_only=False)
        same = pc.fill_null(pc.equal(earlier, hashes), False).to_numpy(zero_copy_only=False)
        new, duplicates, conflicts = np.flatnonzero(~known), int(same.sum()), np.flatnonzero(known & ~same).tolist()
    else:   # a version twice: each row against those before it
        mine: dict[str, str] = {}
        new, duplicates, conflicts = [], 0, []
        for i, (text, digest, before) in enumerate(zip(texts.to_pylist(), hashes.to_pylist(), earlier.to_pylist())):
            before = mine.get(text, before)
            if before is None:
                mine[text] = digest
                new.append(i)
            elif before == digest:
                duplicates += 1
            else:
                conflicts.append(i)
        new = np.array(new, dtype=np.int64)
    if len(new):
        seen.added.append(VersionSet(texts.take(new), hashes.take(new)))
    return new, duplicates, conflicts


def sort_rows(part: Part, lineage: dict, seen: Versions,
              quarantine: Quarantine) -> tuple[pa.Table, FileCounts]:
    """Sort each row of a judged part into event, duplicate or quarantine; a new version
    is added to `seen`."""
    spec, chunk, parsed, broken = part.spec, part.chunk, part.parsed, part.broken
    counts = FileCounts(rows=chunk.size)
    table = event_schema.TABLE_OF_FILE[spec.file]
    for r in chunk.misshapen:
        quarantine.add(spec.file, r.number, r.cells, [f"{table}.row.shape"], f"{r.shape_error}: check quoting of this row")
    numbers = sorted(broken)
    broken_at = chunk.positions(numbers)
    for number, cells in zip(numbers, chunk.cells(broken_at)):
        violations = broken[number]
        quarantine.add(spec.file, number, cells, sorted({v.rule for v in violations}),
                       _violation_reason(cells, violations))
    is_valid = np.ones(len(chunk.numbers), dtype=bool)
    is_valid[broken_at] = False
    valid = np.flatnonzero(is_valid)
    columns, digests = record_events(spec, chunk, parsed, is_valid)
    micros = _utc_micros(parsed.typed["recorded_at"].iloc[valid])
    texts = event_store.version_texts([columns[k] for k in key_columns(spec)], pa.array(micros))
    keep, duplicates, conflicts = against_history(texts, digests, seen, micros)
    counts.duplicates = duplicates
    for i, cells in zip(conflicts, chunk.cells(valid[conflicts])):
        quarantine.add(spec.file, int(chunk.numbers[valid[i]]), cells, [f"{table}.key.conflict"],
                       "same key and recorded_at as a version already accepted, with different "
                       "content: send a correction with a later recorded_at")
    # rows are kept by boolean masks, in order: Arrow filters a column 4x faster than it takes
    kept = np.zeros(len(valid), dtype=bool)
    kept[keep] = True
    is_event = np.zeros(len(chunk.numbers), dtype=bool)
    is_event[valid[kept]] = True
    n = len(keep)
    rows = pa.array(chunk.numbers[is_event], type=pa.int64())
    events = dict(columns, content_hash=digests)
    if n < len(valid):
        events = {name: arr.filter(kept) for name, arr in events.items()}
    events.update(
        event_id=pc.binary_join_element_wise(f"{lineage['batch_id']}:{spec.file}:", rows.cast(pa.string()), ""),
        source_file=pa.repeat(pa.scalar(spec.file, pa.string()), n),
        source_row=rows,
        recorded_at_text=chunk.columns["recorded_at"].filter(is_event),
        **{k: pa.repeat(pa.scalar(v, event_schema.schema(table).field(k).type), n) for k, v in lineage.items()})
    counts.events = n
    counts.quarantined = counts.rows - counts.events - counts.duplicates
    schema = event_schema.schema(table)
    return pa.table([events[f.name] for f in schema], schema=schema), counts


@dataclass
class Opened:
    """A submission on its way in: its checks done, its rows read (`parts`, per file: the
    judged parts, or the HeaderError that spoils the file) or left to stream (None)."""
    folder: Path
    report: SubmissionReport
    manifest: object | None
    parts: dict[str, list[Part] | HeaderError] | None = None

    @property
    def csv_bytes(self) -> int:
        if self.manifest is None:
            return 0
        return sum((self.folder / f).stat().st_size for f in self.manifest.files if (self.folder / f).is_file())


class Ledger(list):
    """The submissions ledger's rows, oldest first, with each submission's rows at hand: a
    run looks every landed submission up, and a scan of the list each time would make a
    run's cost quadratic in the history (0.5 ms a scan at 12,000 rows)."""

    def __init__(self, rows: list[dict]):
        super().__init__()
        self._of: dict[tuple[str, str], list[dict]] = {}
        for row in rows:
            self.append(row)

    def append(self, row: dict) -> None:
        super().append(row)
        self._of.setdefault((row["site_id"], row["submission_id"]), []).append(row)

    def of(self, site_id: str, submission_id: str) -> list[dict]:
        return self._of.get((site_id, submission_id), [])


def earlier_ingests(ledger: Ledger, site_id: str, submission_id: str,
                    batch_id: str) -> tuple[dict | None, bool]:
    """What the ledger says of a submission: the row of this very batch when it was
    ingested before (it is skipped), and whether its submission_id was already accepted
    (with other content, if not this batch: the id was reused)."""
    previous = ledger.of(site_id, submission_id)
    return (next((r for r in previous if r["batch_id"] == batch_id), None),
            any(r["status"] == "accepted" for r in previous))


def _accepted_manifest(folder: Path, ledger: Ledger) -> str | None:
    """The SHA-256 of the folder's manifest.json when the ledger holds that very manifest
    as accepted and the folder is as it was then: the manifest's files and no other CSV,
    none modified after the submission was ingested. None otherwise (and when the
    manifest cannot be read): the submission is then checked in full, so a folder changed
    since (a CSV added, removed or rewritten) is still reported, as a reused id.

    An unchanged accepted submission is skipped without its files being hashed and
    counted again, so a run costs what is new in the landing area, not all that it has
    kept (at 10m events, 1.3 GB of accepted submissions: a run with nothing new took
    8.6 s, now 1.0 s)."""
    path = folder / contract.MANIFEST
    try:
        if path.is_symlink() or not path.is_file():
            return None
        raw = path.read_bytes()
        identity = hashlib.sha256(raw).hexdigest()   # as load_manifest has it
        site_id, submission_id = folder.parent.name, folder.name
        done, _ = earlier_ingests(ledger, site_id, submission_id, batch_id_of(site_id, submission_id, identity))
        if done is None or done["status"] != "accepted":
            return None
        listed = set(json.loads(raw.decode("utf-8-sig"))["files"])
        present = {p.name for p in folder.iterdir() if p.name.lower().endswith(".csv")}
        accepted_at = done["ingested_at"].timestamp()
        if present != listed or any((folder / name).lstat().st_mtime > accepted_at for name in listed):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None   # load_manifest words it
    return identity


def open_submission(folder: Path, ledger: Ledger) -> Opened:
    """Folder names and manifest checked, and whether it was ingested before: the report
    is final when its status is `skipped`, or when the submission_id was reused."""
    site_id, submission_id = folder.parent.name, folder.name
    report = SubmissionReport(site_id=site_id, submission_id=submission_id, status="rejected")
    manifest, identity = None, "unreadable-folder"
    try:
        if folder.parent.is_symlink():
            raise SubmissionRejected("folder.symlink", "the site folder is a symbolic link; "
                                     "drop the submissions themselves into the landing area")
        check_names(site_id, submission_id)
        if folder.is_symlink():
            raise SubmissionRejected("folder.symlink", "the submission folder is a symbolic link; "
                                     "drop the files themselves into the landing area")
        identity = _folder_fingerprint(folder)
        accepted = _accepted_manifest(folder, ledger)
        if accepted is not None:
            identity = accepted   # skipped below: its files are not read again
        else:
            manifest = load_manifest(folder)
            identity = manifest.sha256
    except SubmissionRejected as e:
        report.reason, report.rule = e.message, e.rule
    report.batch_id = batch_id_of(site_id, submission_id, identity)
    opened = Opened(folder, report, manifest)
    done, accepted_before = earlier_ingests(ledger, site_id, submission_id, report.batch_id)
    if done is not None:
        report.status, report.reason = "skipped", f"already ingested ({done['status']}) on {done['ingested_at']:%Y-%m-%d %H:%M} UTC"
    elif accepted_before:
        report.rule = "submission.id_reused"
        report.reason = ("this submission_id was already accepted with other content; a submission never "
                         "changes: send the new files under a new submission_id")
    return opened


def is_final(opened: Opened) -> bool:
    """Nothing to write: skipped, or an id reused (not recorded: the accepted one stays
    the record of this id)."""
    return opened.report.status == "skipped" or opened.report.rule == "submission.id_reused"


def read_submission(opened: Opened, pseudo: Pseudonymizer) -> None:
    """Read and parse every file of a submission into parts (held in memory until judged);
    an encoding or syntax error rejects the submission here, before anything is written."""
    site_id = opened.report.site_id
    opened.parts = {}
    try:
        for spec in contract.FILES.values():
            if spec.file in opened.manifest.files:
                try:
                    opened.parts[spec.file] = list(read_parts(spec, opened.folder / spec.file, site_id, pseudo))
                except HeaderError as e:
                    opened.parts[spec.file] = e
    except FileRejected as e:
        opened.report.reason, opened.report.rule = e.message, e.rule
        opened.manifest, opened.parts = None, None


class History:
    """The accepted versions of each table of one site (a VersionSet): read from the store
    when the run comes to the site, then kept up to date by the run's own commits (a
    site's history is not read again for each of its submissions). Submissions come site
    by site, so only the current site's history is held: memory stays that of the
    largest site, not of the whole program."""

    def __init__(self, home: Home, ledger: Ledger):
        self.home, self.ledger = home, ledger
        self._site: str | None = None
        self._versions: dict[str, VersionSet] = {}

    def of(self, spec: contract.FileSpec, site_id: str) -> VersionSet:
        if site_id != self._site:
            self._site, self._versions = site_id, {}
        table = event_schema.TABLE_OF_FILE[spec.file]
        if table not in self._versions:
            self._versions[table] = event_store.versions(
                self.home, table, site_id, key_columns(spec), ledger_rows=self.ledger)
        return self._versions[table]

    def pending(self, site_id: str) -> dict[str, Versions]:
        """A submission's view of its site's history: what it adds stays in its own layer
        until `keep` (committed) or is dropped with it (rejected)."""
        return {spec.file: Versions(self.of(spec, site_id)) for spec in contract.FILES.values()}

    def keep(self, pending: dict[str, Versions]) -> None:
        """A committed submission's versions join its site's history."""
        for file, versions in pending.items():
            if versions.added:
                self._versions[event_schema.TABLE_OF_FILE[file]] = versions.all()


def finish_submission(home: Home, opened: Opened, pseudo: Pseudonymizer, ledger: Ledger,
                      progress: Progress = print, history: History | None = None) -> SubmissionReport:
    """Write the submission's events, duplicates' counts and quarantine, then its ledger row
    (appended to `ledger` too). Parts not read yet are streamed and judged chunk by chunk."""
    report, manifest = opened.report, opened.manifest
    site_id, submission_id, batch_id = report.site_id, report.submission_id, report.batch_id
    # ingested_at is what `build --as-of` cuts on: stamp it when this submission's writing
    # starts, not when its wave was opened (a wave's reading and GX run come in between)
    ingested_at = datetime.now(timezone.utc)
    files: dict[str, FileCounts] = {}
    quarantine = Quarantine(batch_id, site_id, submission_id, ingested_at)
    history = history or History(home, ledger)
    seen = history.pending(site_id) if manifest is not None else {}
    with event_store.BatchWriter(home, batch_id) as writer:
        if manifest is not None:
            lineage = dict(batch_id=batch_id, site_id=site_id, submission_id=submission_id,
                           ingested_at=ingested_at)
            try:
                for spec in contract.FILES.values():
                    if spec.file in manifest.files:
                        read = opened.parts.get(spec.file) if opened.parts is not None else None
                        files[spec.file] = ingest_csv(home, spec, opened.folder / spec.file,
                                                      f"{site_id}__{submission_id}", lineage, quarantine, writer,
                                                      pseudo, progress, read, seen[spec.file])
                report.status = "accepted"
            except FileRejected as e:
                report.reason, report.rule = e.message, e.rule
                writer.abort()
                files = {}
        report.count(files.values())
        report.files = files
        ledger.append(writer.commit(dict(
            report.ledger_row(manifest, ingested_at, site_id=site_id, submission_id=submission_id),
            files_json=json.dumps({k: asdict(v) for k, v in files.items()}, sort_keys=True))))
        if report.status == "accepted":
            history.keep(seen)
    return report


def ingest_csv(home: Home, spec: contract.FileSpec, path: Path, run_name: str, lineage: dict,
               quarantine: Quarantine, writer: event_store.BatchWriter, pseudo: Pseudonymizer | None,
               progress: Progress, read: list[Part] | HeaderError | None = None,
               seen: Versions | None = None) -> FileCounts:
    """One CSV into the batch: its parts already read and judged (`read`), or streamed
    from the file and judged chunk by chunk. `seen`: the versions accepted before (read
    from the store when not given), to which this file's new versions are added."""
    table = event_schema.TABLE_OF_FILE[spec.file]
    site_id = lineage.get("site_id")
    if seen is None:
        seen = Versions(event_store.versions(home, table, site_id, key_columns(spec),
                                             ledger="submissions" if site_id is not None else "literature"))
    counts = FileCounts()
    where = f"{run_name.replace('__', '/')} {spec.file}"
    try:
        if isinstance(read, HeaderError):
            raise read
        for part in read if read is not None else read_parts(spec, path, site_id, pseudo):
            if part.broken is None:
                judge(home, [part], run_name if counts.rows == 0 else f"{run_name}__row{counts.rows + 1}")
            events, c = sort_rows(part, lineage, seen, quarantine)
            writer.events(table, events)
            writer.quarantine(quarantine.drain())
            counts.add(c)
            progress(f"  {where}: {counts.rows} rows read")
    except HeaderError as e:
        counts = quarantine_whole_file(spec, path, e, site_id, quarantine, writer, pseudo)
        progress(f"  {where}: {e.message}; its {counts.rows} rows quarantined")
    return counts


def quarantine_whole_file(spec: contract.FileSpec, path: Path, error: HeaderError, site_id: str | None,
                          quarantine: Quarantine, writer: event_store.BatchWriter,
                          pseudo: Pseudonymizer | None) -> FileCounts:
    """A header that breaks the contract is an error for the whole file: every row is
    quarantined with that reason; the other files of the submission still land. Only the
    contract's columns of a row are kept (patient_ref pseudonymized): an unknown column
    could hold anything, and the file itself stays in the landing area."""
    table = event_schema.TABLE_OF_FILE[spec.file]
    counts = FileCounts(error=f"{error.message} [{table}.file.header]")
    for row in read_raw(path):
        cells = {c: row.cells.get(c) for c in spec.column_names if c in row.cells}
        if pseudo is not None and "patient_ref" in cells:
            cells["patient_ref"] = pseudo(site_id, cells["patient_ref"])
        if pseudo is not None and "ref" in cells and cells.get("record_type") not in NOT_PATIENT:
            cells["ref"] = pseudo(site_id, cells["ref"])
        quarantine.add(spec.file, row.number, cells, [f"{table}.file.header"], error.message)
        counts.rows += 1
        counts.quarantined += 1
        if len(quarantine.rows) >= 50_000:
            writer.quarantine(quarantine.drain())
    writer.quarantine(quarantine.drain())
    return counts


def complete_submissions(landing: Path) -> tuple[list[Path], list[Path]]:
    """(complete submission folders, folders still being written), in a stable order.
    Every folder counts, hidden or not: a name the contract does not allow is rejected
    by name, and a site folder that is a symbolic link is not listed at all (it is
    rejected as one submission named after the link)."""
    complete, waiting = [], []
    if not landing.is_dir():
        return complete, waiting
    for site in sorted(landing.iterdir()):
        if site.is_symlink():
            complete.append(site / "(symbolic link)")
            continue
        if not site.is_dir():
            continue
        for sub in sorted(site.iterdir()):
            if not sub.is_dir():
                continue
            if sub.is_symlink() or (sub / contract.MANIFEST).exists() or (sub / contract.MANIFEST).is_symlink():
                complete.append(sub)
            else:
                waiting.append(sub)
    return complete, waiting


def ingest_folders(home: Home, numbered: list[tuple[int, Path]], total: int, pseudo: Pseudonymizer,
                   ledger: Ledger, progress: Progress = print,
                   wave_bytes: int | None = None) -> dict[int, SubmissionReport]:
    """Ingest these complete submission folders (numbered in landing order, of `total`),
    in waves of up to `wave_bytes` of CSV: a wave's files are read, then each file type's
    rows are validated in one GX run, then each submission is sorted and committed in
    landing order (so a site's later submission is compared with its earlier one), then
    the wave's Data Docs pages are rendered (the index is left to the end of the run). A
    submission larger than a wave is streamed alone, chunk by chunk. Default wave:
    WAVE_BYTES."""
    wave_bytes = WAVE_BYTES if wave_bytes is None else wave_bytes
    reports: dict[int, SubmissionReport] = {}
    wave: list[tuple[int, Opened]] = []
    history = History(home, ledger)

    def run_wave() -> None:
        readable = [o for _, o in wave if o.manifest is not None]
        if len(readable) > 1 or (readable and readable[0].csv_bytes <= wave_bytes):
            for o in readable:
                read_submission(o, pseudo)
            parts = [p for o in readable for read in (o.parts or {}).values()
                     if not isinstance(read, HeaderError) for p in read]
            if parts:
                first = readable[0].report
                progress(f"validating {sum(p.chunk.size for p in parts)} rows of {len(readable)} "
                         "submission(s) with the GX suites")
                judge(home, parts, f"{first.site_id}__{first.submission_id}"
                      + (f"__and_{len(readable) - 1}_more" if len(readable) > 1 else ""))
        for i, o in wave:
            reports[i] = finish_submission(home, o, pseudo, ledger, progress, history)
            progress(reports[i].line())
        wave.clear()
        validation.wave_committed(home)   # its Data Docs pages are rendered

    for i, folder in numbered:
        progress(f"[{i + 1}/{total}] {folder.parent.name}/{folder.name}")
        opened = open_submission(folder, ledger)
        if is_final(opened):
            reports[i] = opened.report
            progress(opened.report.line())
            continue
        if wave and sum(o.csv_bytes for _, o in wave) + opened.csv_bytes > wave_bytes:
            run_wave()
        wave.append((i, opened))
    run_wave()
    return reports


def ingest_landing(home: Home, landing: Path | None = None, progress: Progress = print,
                   workers: int | None = None) -> list[SubmissionReport]:
    """Ingest every complete, not yet ingested submission under the landing area.

    Sites are independent (each has its own history and pseudonyms), so when there is
    enough to do the sites are shared among worker processes, one per core (`workers`:
    how many at most; default the cores this process may use), each ingesting its sites'
    submissions in landing order (ingest_workers.py). Otherwise, or with workers=1, all
    in this process."""
    home.ensure()
    landing = Path(landing) if landing else home.landing
    with event_store.ingest_lock(home, progress):
        pseudo = Pseudonymizer(load_key(home.key_file))
        ledger = Ledger(event_store.read_ledger(home))
        complete, waiting = complete_submissions(landing)
        from .ingest_workers import plan_groups, run_in_workers
        groups = plan_groups(complete, ledger, workers)
        if len(groups) > 1:
            reports = run_in_workers(home, groups, len(complete), progress)
        else:
            reports = ingest_folders(home, list(enumerate(complete)), len(complete), pseudo, ledger, progress)
        ordered = [SubmissionReport(site_id=f.parent.name, submission_id=f.name, status="waiting",
                                    reason="no manifest.json yet: the site is still writing it") for f in waiting]
        ordered += [reports[i] for i in sorted(reports)]
        if any(r.status == "accepted" for r in ordered):
            progress(f"GX Data Docs: {validation.build_data_docs(home)}")
    return ordered
