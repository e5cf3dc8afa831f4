"""`safety-ledger verify`: re-checks the whole event store.

For every committed batch: rows = events + duplicates + quarantined (in total and per
input file); every file the batch wrote still has the SHA-256 recorded at commit; the
batch's event and quarantine files hold exactly the counted rows. Files that no ledger row
commits (left by a crash before the commit point) are listed: the next ingest of that
submission replaces them, and nothing reads them meanwhile.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow.parquet as pq

from . import event_store
from .home import Home
from .manifest import file_sha256


@dataclass
class VerifyReport:
    batches: int = 0
    files: int = 0
    problems: list[str] = field(default_factory=list)
    uncommitted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_batch(home: Home, row: dict, where: str, report: VerifyReport) -> None:
    if row["rows"] != row["events"] + row["duplicates"] + row["quarantined"]:
        report.problems.append(f"{where}: rows {row['rows']} != events {row['events']} + duplicates "
                               f"{row['duplicates']} + quarantined {row['quarantined']}")
    for name, c in json.loads(row.get("files_json") or "{}").items():
        if c["rows"] != c["events"] + c["duplicates"] + c["quarantined"]:
            report.problems.append(f"{where} {name}: rows {c['rows']} != events + duplicates + quarantined")
    counted = {"events": 0, "quarantined": 0}
    for rel, digest in json.loads(row.get("outputs_json") or "{}").items():
        path = home.root / rel
        report.files += 1
        if not path.is_file():
            report.problems.append(f"{where}: {rel} is missing")
            continue
        if file_sha256(path) != digest:
            report.problems.append(f"{where}: {rel} has changed since it was committed (SHA-256 differs)")
            continue
        kind = "quarantined" if path.parent == home.quarantine else "events"
        counted[kind] += pq.read_metadata(path).num_rows
    for kind in ("events", "quarantined"):
        if counted[kind] != row[kind]:
            report.problems.append(f"{where}: the ledger counts {row[kind]} {kind}, its files hold {counted[kind]}")


def verify(home: Home) -> VerifyReport:
    report = VerifyReport()
    committed = set()
    for ledger in event_store.LEDGERS:
        for row in event_store.read_ledger(home, ledger, cached=False):
            report.batches += 1
            committed.add(row["batch_id"])
            where = (f"{row['site_id']}/{row['submission_id']}" if ledger == "submissions"
                     else f"literature/{row['drop_id']}") + f" (batch {row['batch_id']})"
            _check_batch(home, row, where, report)
    for folder in [*home.events.glob("*"), home.quarantine]:
        if folder.is_dir() and folder.name not in event_store.LEDGERS.values():
            report.uncommitted += [str(p.relative_to(home.root)) for p in sorted(folder.glob("*.parquet"))
                                   if p.stem not in committed]
    return report
