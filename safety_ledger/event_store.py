"""The event store: immutable Parquet files under <home>/events and <home>/quarantine.

A batch (one accepted or rejected submission, or one literature drop) is written as
its event files, then its quarantine file, then its ledger row; the ledger row is the
commit point, so a crash before it leaves only files that nothing reads and that the
next run overwrites (the batch id is derived from the content, so it is the same).
"""
from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from . import event_schema
from .atomic import atomic_path, fsync_dir
from .faults import disk_full, fault_point
from .home import Home
from .manifest import file_sha256

# ledger name -> the folder under events/ holding its rows
LEDGERS = {"submissions": "submissions", "literature": "literature_drops"}


def table_dir(home: Home, table: str) -> Path:
    return home.events / table


def write_table(path: Path, table: pa.Table) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_ledger(home: Home, ledger: str = "submissions") -> list[dict]:
    """Every committed ledger row, oldest first."""
    files = sorted(table_dir(home, LEDGERS[ledger]).glob("*.parquet"))
    if not files:
        return []
    rows = pa.concat_tables([pq.read_table(f) for f in files]).to_pylist()
    return sorted(rows, key=lambda r: (r["ingested_at"], r["batch_id"]))


def committed_files(home: Home, table: str, ledger: str = "submissions") -> list[str]:
    batches = {r["batch_id"] for r in read_ledger(home, ledger) if r.get("status", "accepted") == "accepted"}
    return [str(p) for p in sorted(table_dir(home, table).glob("*.parquet")) if p.stem in batches]


def versions(home: Home, table: str, site_id: str | None, key_columns: list[str],
             ledger: str = "submissions", ledger_rows: list[dict] | None = None) -> dict[tuple, str]:
    """(key..., recorded_at in microseconds since the epoch) -> content_hash of every
    committed event of a site (or of all sites). `ledger_rows`, when the caller holds the
    ledger already, saves reading it again and narrows the files to the site's batches."""
    if ledger_rows is None:
        files = committed_files(home, table, ledger)
    else:
        batches = {r["batch_id"] for r in ledger_rows if r.get("status", "accepted") == "accepted"
                   and (site_id is None or r.get("site_id") == site_id)}
        files = [str(p) for p in (table_dir(home, table) / f"{b}.parquet" for b in sorted(batches)) if p.exists()]
    if not files:
        return {}
    cols = ", ".join(key_columns)
    where = "WHERE site_id = $site" if site_id is not None else ""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        rows = con.execute(f"SELECT {cols}, epoch_us(recorded_at), content_hash FROM read_parquet($files) {where}",
                           {"files": files, **({"site": site_id} if site_id is not None else {})}).fetchall()
    return {tuple(r[:-1]): r[-1] for r in rows}


class BatchWriter:
    """Writes one batch: event and quarantine rows appended chunk by chunk to temporary
    files, then `commit` closes, fsyncs and renames each into place and writes the ledger
    row last, with the SHA-256 of every file. Leaving the `with` block without a commit
    removes the temporaries: nothing of the batch is visible."""

    def __init__(self, home: Home, batch_id: str, ledger: str = "submissions"):
        self.home, self.batch_id, self.ledger = home, batch_id, ledger
        self._open: dict[Path, tuple[Path, pq.ParquetWriter]] = {}

    def __enter__(self) -> "BatchWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.abort()

    def _append(self, target: Path, data: pa.Table) -> None:
        if data is None or not data.num_rows:
            return
        if target not in self._open:
            target.parent.mkdir(parents=True, exist_ok=True)
            disk_full(target)
            tmp = target.parent / f".{target.name}.{os.getpid()}.tmp"
            self._open[target] = (tmp, pq.ParquetWriter(tmp, data.schema, compression="zstd"))
        self._open[target][1].write_table(data)

    def events(self, table: str, data: pa.Table) -> None:
        self._append(table_dir(self.home, table) / f"{self.batch_id}.parquet", data)

    def quarantine(self, data: pa.Table) -> None:
        self._append(self.home.quarantine / f"{self.batch_id}.parquet", data)

    def abort(self) -> None:
        for tmp, writer in self._open.values():
            writer.close()
            tmp.unlink(missing_ok=True)
        self._open.clear()

    def commit(self, ledger_row: dict) -> dict:
        """Publish the batch; returns the ledger row as written."""
        outputs = {}
        for target, (tmp, writer) in self._open.items():
            writer.close()
            fault_point("mid_write")
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
            fsync_dir(target.parent)
            outputs[str(target.relative_to(self.home.root))] = file_sha256(target)
        self._open.clear()
        fault_point("before_ledger")
        schema = event_schema.SUBMISSIONS if self.ledger == "submissions" else event_schema.LITERATURE_DROPS
        row = pa.Table.from_pylist([dict(ledger_row, outputs_json=json.dumps(outputs, sort_keys=True))],
                                   schema=schema)
        write_table(table_dir(self.home, LEDGERS[self.ledger]) / f"{self.batch_id}.parquet", row)
        return row.to_pylist()[0]


def sweep_temporaries(home: Home) -> int:
    """Remove temporary files a killed writer left (atomic.atomic_path's `.<name>.*.tmp`).
    Call it only while holding the ingest lock: no writer is running then."""
    removed = 0
    for folder in (home.events, home.quarantine):
        for p in folder.rglob(".*.tmp") if folder.is_dir() else ():
            p.unlink(missing_ok=True)
            removed += 1
    return removed


@contextmanager
def ingest_lock(home: Home, progress=print) -> Iterator[None]:
    """One ingest at a time per home: a second process waits for the first."""
    home.root.mkdir(parents=True, exist_ok=True)
    with open(home.lock_file, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"another ingest holds {home.lock_file}; waiting for it to finish")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            sweep_temporaries(home)
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
