"""Ingestion of site submissions: landing folder -> events, duplicates, quarantine.

For each complete submission (one with manifest.json) not yet ingested:
  1. folder names and manifest checked; a failure rejects the submission whole;
  2. each CSV read; patient_ref pseudonymized at once (nothing after this sees it);
  3. the file's GX suite run; a row that breaks a rule is quarantined with the rules;
  4. each valid row compared with the site's history by (key, recorded_at):
     same content -> counted duplicate, other content -> quarantined conflict;
  5. the batch committed (events, quarantine, then the ledger row).
Every data row ends as exactly one of: event, duplicate, quarantined.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pyarrow as pa

from . import contract, event_schema, event_store, values
from .csv_reader import FileRejected, Row, read_chunks
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

    def add(self, other: "FileCounts") -> None:
        self.rows += other.rows
        self.events += other.events
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined


@dataclass
class SubmissionReport:
    site_id: str
    submission_id: str
    status: str                      # accepted | rejected | skipped | waiting
    batch_id: str | None = None
    reason: str | None = None
    rule: str | None = None
    rows: int = 0
    events: int = 0
    duplicates: int = 0
    quarantined: int = 0
    files: dict[str, FileCounts] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        where = f"{self.site_id}/{self.submission_id}"
        if self.status == "accepted":
            return (f"accepted  {where}: {self.rows} rows = {self.events} events + {self.duplicates} "
                    f"duplicates + {self.quarantined} quarantined")
        if self.status == "rejected":
            return (f"REJECTED  {where}: {self.reason} [{self.rule}] -- site {self.site_id} must fix "
                    "and send the submission again; nothing of it was ingested")
        return f"{self.status:<9} {where}: {self.reason}"


def content_hash(record: dict) -> str:
    """Hash of a record's content: every contract column but recorded_at."""
    payload = {k: (v.isoformat() if hasattr(v, "isoformat") else v)
               for k, v in sorted(record.items()) if k != "recorded_at"}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def typed_record(spec: contract.FileSpec, cells: dict[str, str | None]) -> dict:
    """The event columns of one valid row (lineage columns are added by the caller)."""
    out: dict = {}
    for c in spec.columns:
        v = values.parse(c.kind, cells.get(c.name))
        if c.name == "patient_ref":
            out["patient_key"] = v
        elif c.kind == "timestamp":
            out[c.name] = values.to_utc(v)
            if c.name == "started_at":
                out["started_local_date"] = v.date()
        else:
            out[c.name] = v
    return out


def key_of(spec: contract.FileSpec, record: dict) -> tuple:
    """The record key within its site (with recorded_at it identifies a version)."""
    if spec.key is None:  # retractions: one per (record_type, ref, recorded_at)
        return (record["record_type"], record["ref"])
    return (record["patient_key"] if spec.key == "patient_ref" else record[spec.key],)


def key_columns(spec: contract.FileSpec) -> list[str]:
    if spec.key is None:
        return ["record_type", "ref"]
    return ["patient_key" if spec.key == "patient_ref" else spec.key]


def pseudonymize_cells(spec: contract.FileSpec, site_id: str, rows: list[Row], pseudo: Pseudonymizer) -> None:
    """Replace every raw patient reference in place, before anything else reads the rows."""
    for row in rows:
        if "patient_ref" in row.cells:
            row.cells["patient_ref"] = pseudo(site_id, row.cells["patient_ref"])
        # a retraction's ref is a raw patient_ref when it retracts a patient (or when its
        # record_type is unreadable: we cannot tell, so we protect it)
        if spec.file == "retractions.csv" and row.cells.get("record_type") not in ("infusion", "reaction", "irae"):
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

    def add(self, file: str, row: Row, rules: list[str], reason: str) -> None:
        self.rows.append(dict(self._base, source_file=file, source_row=row.number, rules=rules,
                              reason=f"{file} row {row.number}: {reason}",
                              row_json=json.dumps(row.cells, ensure_ascii=False, sort_keys=True)))

    def drain(self) -> pa.Table:
        """The rows collected so far, as a table; the collection starts empty again."""
        table = pa.Table.from_pylist(self.rows, schema=event_schema.QUARANTINE)
        self.rows = []
        return table


def _violation_reason(row: Row, violations) -> str:
    parts = []
    for v in violations:
        column = v.rule.split(".")[1]
        found = row.cells.get(column)
        parts.append(f"{v.explain} (found {found!r})" if column in row.cells else v.explain)
    return "; ".join(parts)


def ingest_file(home: Home, spec: contract.FileSpec, rows: list[Row], run_name: str, lineage: dict, seen: dict[tuple, str], quarantine: Quarantine) -> tuple[pa.Table, FileCounts]:
    """Validate one file's rows and sort each into event, duplicate or quarantine."""
    from .validation import validate  # GX is slow to import: only when there is work

    counts = FileCounts(rows=len(rows))
    table = event_schema.TABLE_OF_FILE[spec.file]
    shaped = [r for r in rows if r.shape_error is None]
    for r in rows:
        if r.shape_error is not None:
            quarantine.add(spec.file, r, [f"{table}.row.shape"], f"{r.shape_error}: check quoting of this row")
    broken = validate(home, spec, shaped, run_name)
    events = []
    for r in shaped:
        if r.number in broken:
            quarantine.add(spec.file, r, sorted({v.rule for v in broken[r.number]}),
                           _violation_reason(r, broken[r.number]))
            continue
        record = typed_record(spec, r.cells)
        digest = content_hash(record)
        version = (*key_of(spec, record), record["recorded_at"])
        if version in seen:
            if seen[version] == digest:
                counts.duplicates += 1
            else:
                quarantine.add(spec.file, r, [f"{table}.key.conflict"],
                               "same key and recorded_at as a version already accepted, with different "
                               "content: send a correction with a later recorded_at")
            continue
        seen[version] = digest
        events.append(dict(record, **lineage, event_id=f"{lineage['batch_id']}:{spec.file}:{r.number}",
                           source_file=spec.file, source_row=r.number, content_hash=digest,
                           recorded_at_text=r.cells["recorded_at"]))
    counts.events = len(events)
    counts.quarantined = counts.rows - counts.events - counts.duplicates
    return pa.Table.from_pylist(events, schema=event_schema.schema(table)), counts


def ingest_submission(home: Home, folder: Path, pseudo: Pseudonymizer, ledger: list[dict],
                      progress: Progress = print) -> SubmissionReport:
    site_id, submission_id = folder.parent.name, folder.name
    report = SubmissionReport(site_id, submission_id, "rejected")
    ingested_at = datetime.now(timezone.utc)
    manifest, identity = None, "unreadable-folder"
    try:
        check_names(site_id, submission_id)
        if folder.is_symlink() or folder.parent.is_symlink():
            raise SubmissionRejected("folder.symlink", "the submission folder is a symbolic link; "
                                     "drop the files themselves into the landing area")
        identity = _folder_fingerprint(folder)
        manifest = load_manifest(folder)
        identity = manifest.sha256
    except SubmissionRejected as e:
        report.reason, report.rule = e.message, e.rule
    batch_id = batch_id_of(site_id, submission_id, identity)
    report.batch_id = batch_id
    previous = [r for r in ledger if r["site_id"] == site_id and r["submission_id"] == submission_id]
    if any(r["batch_id"] == batch_id for r in previous):
        done = next(r for r in previous if r["batch_id"] == batch_id)
        report.status, report.reason = "skipped", f"already ingested ({done['status']}) on {done['ingested_at']:%Y-%m-%d %H:%M} UTC"
        return report
    if any(r["status"] == "accepted" for r in previous):
        report.rule = "submission.id_reused"
        report.reason = ("this submission_id was already accepted with other content; a submission never "
                         "changes: send the new files under a new submission_id")
        return report  # not recorded: the accepted one stays the record of this id

    files: dict[str, FileCounts] = {}
    quarantine = Quarantine(batch_id, site_id, submission_id, ingested_at)
    with event_store.BatchWriter(home, batch_id) as writer:
        if manifest is not None:
            lineage = dict(batch_id=batch_id, site_id=site_id, submission_id=submission_id,
                           ingested_at=ingested_at)
            try:
                for spec in contract.FILES.values():
                    if spec.file in manifest.files:
                        files[spec.file] = ingest_csv(home, spec, folder / spec.file, f"{site_id}__{submission_id}",
                                                      lineage, quarantine, writer, pseudo, progress)
                report.status = "accepted"
            except FileRejected as e:
                report.reason, report.rule = e.message, e.rule
                writer.abort()
                files = {}
        for c in files.values():
            report.rows += c.rows
            report.events += c.events
            report.duplicates += c.duplicates
            report.quarantined += c.quarantined
        report.files = files
        assert report.rows == report.events + report.duplicates + report.quarantined
        writer.commit({
            "batch_id": batch_id, "site_id": site_id, "submission_id": submission_id,
            "manifest_sha256": manifest.sha256 if manifest else None,
            "exported_at": manifest.exported_at if manifest else None, "ingested_at": ingested_at,
            "status": report.status, "reason": report.reason, "rule": report.rule,
            "rows": report.rows, "events": report.events, "duplicates": report.duplicates,
            "quarantined": report.quarantined,
            "files_json": json.dumps({k: asdict(v) for k, v in files.items()}, sort_keys=True)})
    return report


def ingest_csv(home: Home, spec: contract.FileSpec, path: Path, run_name: str, lineage: dict,
               quarantine: Quarantine, writer: event_store.BatchWriter, pseudo: Pseudonymizer | None,
               progress: Progress) -> FileCounts:
    """Stream one CSV through validation into the batch, chunk by chunk."""
    table = event_schema.TABLE_OF_FILE[spec.file]
    site_id = lineage.get("site_id")
    seen = event_store.versions(home, table, site_id, key_columns(spec),
                                ledger="submissions" if site_id is not None else "literature")
    counts = FileCounts()
    for part, rows in enumerate(read_chunks(path, spec.column_names)):
        if pseudo is not None:
            pseudonymize_cells(spec, site_id, rows, pseudo)
        name = run_name if part == 0 else f"{run_name}__part{part + 1}"
        events, c = ingest_file(home, spec, rows, name, lineage, seen, quarantine)
        writer.events(table, events)
        writer.quarantine(quarantine.drain())
        counts.add(c)
        progress(f"  {run_name.replace('__', '/')} {spec.file}: {counts.rows} rows read")
    return counts


def complete_submissions(landing: Path) -> tuple[list[Path], list[Path]]:
    """(complete submission folders, folders still being written), in a stable order."""
    complete, waiting = [], []
    if not landing.is_dir():
        return complete, waiting
    for site in sorted(landing.iterdir()):
        if not site.is_dir() or site.name.startswith("."):
            continue
        for sub in sorted(site.iterdir()):
            if not sub.is_dir() or sub.name.startswith("."):
                continue
            (complete if (sub / contract.MANIFEST).exists() else waiting).append(sub)
    return complete, waiting


def ingest_landing(home: Home, landing: Path | None = None, progress: Progress = print) -> list[SubmissionReport]:
    """Ingest every complete, not yet ingested submission under the landing area."""
    home.ensure()
    landing = Path(landing) if landing else home.landing
    reports = []
    with event_store.ingest_lock(home, progress):
        pseudo = Pseudonymizer(load_key(home.key_file))
        ledger = event_store.read_ledger(home)
        complete, waiting = complete_submissions(landing)
        for folder in waiting:
            reports.append(SubmissionReport(folder.parent.name, folder.name, "waiting",
                                            reason="no manifest.json yet: the site is still writing it"))
        for i, folder in enumerate(complete, start=1):
            progress(f"[{i}/{len(complete)}] {folder.parent.name}/{folder.name}")
            report = ingest_submission(home, folder, pseudo, ledger, progress)
            if report.status in ("accepted", "rejected") and report.rule != "submission.id_reused":
                ledger = event_store.read_ledger(home)
            progress(report.line())
            reports.append(report)
        if any(r.status == "accepted" for r in reports):
            from .validation import build_data_docs
            progress(f"GX Data Docs: {build_data_docs(home)}")
    return reports
