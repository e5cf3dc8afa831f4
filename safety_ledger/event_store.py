"""The event store: immutable Parquet files under <home>/events and <home>/quarantine.

A batch (one accepted or rejected submission, or one literature drop) is written as
its event files, then its quarantine file, then its ledger row; the ledger row is the
commit point, so a crash before it leaves only files that nothing reads and that the
next run overwrites (the batch id is derived from the content, so it is the same).
"""
from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from . import event_schema
from .atomic import atomic_path
from .faults import fault_point
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
             ledger: str = "submissions") -> dict[tuple, str]:
    """(key..., recorded_at) -> content_hash of every committed event of a site (or of all)."""
    files = committed_files(home, table, ledger)
    if not files:
        return {}
    cols = ", ".join(key_columns)
    where = "WHERE site_id = $site" if site_id is not None else ""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        rows = con.execute(f"SELECT {cols}, recorded_at, content_hash FROM read_parquet($files) {where}",
                           {"files": files, **({"site": site_id} if site_id is not None else {})}).fetchall()
    return {tuple(r[:-1]): r[-1] for r in rows}


def commit_batch(home: Home, batch_id: str, events: dict[str, pa.Table], quarantine: pa.Table | None,
                 ledger_row: dict, ledger: str = "submissions") -> None:
    """Write a batch's files, the ledger row last, with the checksum of every file written."""
    outputs = {}
    targets = [(table_dir(home, t) / f"{batch_id}.parquet", d) for t, d in events.items()]
    targets.append((home.quarantine / f"{batch_id}.parquet", quarantine))
    for path, data in targets:
        if data is not None and data.num_rows:
            write_table(path, data)
            outputs[str(path.relative_to(home.root))] = file_sha256(path)
    fault_point("before_ledger")
    ledger_row = dict(ledger_row, outputs_json=json.dumps(outputs, sort_keys=True))
    schema = event_schema.SUBMISSIONS if ledger == "submissions" else event_schema.LITERATURE_DROPS
    write_table(table_dir(home, LEDGERS[ledger]) / f"{batch_id}.parquet",
                pa.Table.from_pylist([ledger_row], schema=schema))


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
