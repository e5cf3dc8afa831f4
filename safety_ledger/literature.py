"""Literature drops: `<dir>/<drop_id>/manifest.json` + `publications.csv`, format in
samples/literature/README.md. Ingested like a site submission: manifest checked,
rows validated by the `publications` GX suite, accepted rows written as events."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import contract, event_store
from .csv_reader import FileRejected
from .home import Home
from .ingest import FileCounts, Outcome, Progress, Quarantine, batch_id_of, ingest_csv
from .manifest import SubmissionRejected, file_sha256, load_manifest

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

STUDY_TYPES = ("case_report", "phase1", "phase1b_2", "phase2", "phase3", "real_world",
               "health_economics", "review", "other")

PUBLICATIONS = contract.FileSpec("publications.csv", "publication", "publication_id", (
    contract.Column("publication_id", "string", max_length=64),
    contract.Column("title", "string", max_length=1000),
    contract.Column("indication", "string", max_length=200),
    contract.Column("study_type", "enum", vocabulary=STUDY_TYPES),
    contract.Column("key_finding", "string", nullable=True, max_length=1000),
    contract.RECORDED_AT,
), contract="literature-drop-v1")


@dataclass(kw_only=True)
class DropReport(Outcome):
    drop_id: str

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        if self.status == "accepted":
            return (f"accepted  literature/{self.drop_id}: {self.rows} rows = {self.events} events + "
                    f"{self.duplicates} duplicates + {self.quarantined} quarantined")
        if self.status == "rejected":
            return (f"REJECTED  literature/{self.drop_id}: {self.reason} [{self.rule}] -- fix the drop "
                    "and put it in again; nothing of it was ingested")
        return f"{self.status:<9} literature/{self.drop_id}: {self.reason}"


def ingest_drop(home: Home, folder: Path, ledger: list[dict], progress: Progress = print) -> DropReport:
    drop_id = folder.name
    ingested_at = datetime.now(timezone.utc)
    report = DropReport(drop_id=drop_id, status="rejected")
    counts = FileCounts()
    try:
        if not ID_PATTERN.match(drop_id):
            raise SubmissionRejected("folder.drop_id", f"drop folder name {drop_id!r} is not 1-64 characters "
                                     "of A-Z a-z 0-9 _ -: rename the folder")
        manifest = load_manifest(folder, id_keys=("drop_id",), known_files=(PUBLICATIONS.file,))
    except SubmissionRejected as e:
        manifest, report.reason, report.rule = None, e.message, e.rule
    manifest_path = folder / contract.MANIFEST
    report.batch_id = batch_id_of("literature", drop_id, manifest.sha256 if manifest else
                                  file_sha256(manifest_path)
                                  if manifest_path.is_file() else "")
    if any(r["batch_id"] == report.batch_id for r in ledger):
        report.status, report.reason = "skipped", "already ingested"
        return report
    quarantine = Quarantine(report.batch_id, "literature", drop_id, ingested_at)
    with event_store.BatchWriter(home, report.batch_id, ledger="literature") as writer:
        if manifest is not None:
            try:
                if PUBLICATIONS.file in manifest.files:
                    lineage = dict(batch_id=report.batch_id, drop_id=drop_id, ingested_at=ingested_at)
                    counts = ingest_csv(home, PUBLICATIONS, folder / PUBLICATIONS.file, f"literature__{drop_id}",
                                        lineage, quarantine, writer, None, progress)
                report.status = "accepted"
            except FileRejected as e:
                report.reason, report.rule = e.message, e.rule
                writer.abort()
                counts = FileCounts()
        report.count([counts])
        writer.commit(report.ledger_row(manifest, ingested_at, drop_id=drop_id))
    return report


def ingest_literature(home: Home, directory: Path | None = None, progress: Progress = print) -> list[DropReport]:
    """Ingest every complete, not yet ingested literature drop under `directory`."""
    home.ensure()
    directory = Path(directory) if directory else home.literature_landing
    reports = []
    with event_store.ingest_lock(home, progress):
        ledger = event_store.read_ledger(home, "literature")
        drops = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if directory.is_dir() else []
        for folder in drops:
            if not (folder / contract.MANIFEST).exists():
                reports.append(DropReport(drop_id=folder.name, status="waiting", reason="no manifest.json yet"))
                continue
            report = ingest_drop(home, folder, ledger, progress)
            if report.status != "skipped":
                ledger = event_store.read_ledger(home, "literature")
            progress(report.line())
            reports.append(report)
        if any(r.status == "accepted" for r in reports):
            from .validation import build_data_docs
            progress(f"GX Data Docs: {build_data_docs(home)}")
    return reports
