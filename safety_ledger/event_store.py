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
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
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


def read_ledger(home: Home, ledger: str = "submissions", cached: bool = True) -> list[dict]:
    """Every committed ledger row, oldest first.

    A ledger file is written once (its rename commits its batch) and never changed, so
    the rows read are kept in <home>/cache/<ledger>-ledger.parquet, each with its file's
    name, size and mtime; a later read opens only the files the cache does not hold as
    they are now. A run's cost then follows what is new, not the whole history: at
    11,880 submissions, reading every file takes 32 s (in each process of every ingest),
    the cache 0.4 to 0.7 s. The cache is derived: a row whose file is gone or differs is
    not used, a cache that cannot be read or has another layout is ignored, and a home
    where it cannot be written is read without it. `cached=False` reads every file
    (`verify` checks the files themselves)."""
    folder = table_dir(home, LEDGERS[ledger])
    on_disk = {p.name: _file_identity(p) for p in folder.glob("*.parquet")}
    if not on_disk:
        return []
    cache = home.cache / f"{ledger}-ledger.parquet"
    held = _cached_rows(cache, folder, on_disk) if cached else None
    known = set(held.column("_file").to_pylist()) if held is not None else set()
    new = [_with_identity(pq.read_table(folder / name), name, on_disk[name])
           for name in sorted(on_disk) if name not in known]
    table = pa.concat_tables(([held] if held is not None else []) + new)
    if cached and new:
        try:
            write_table(cache, table)
        except OSError:
            pass   # a read-only home, a full disk: read without the cache
    rows = table.drop_columns(_IDENTITY.names).to_pylist()
    return sorted(rows, key=lambda r: (r["ingested_at"], r["batch_id"]))


# the columns a cached row carries about the file it was read from
_IDENTITY = pa.schema([("_file", pa.string()), ("_size", pa.int64()), ("_mtime_ns", pa.int64())])


def _file_identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _with_identity(rows: pa.Table, name: str, identity: tuple[int, int]) -> pa.Table:
    for field, value in zip(_IDENTITY, (name, *identity)):
        rows = rows.append_column(field, pa.repeat(pa.scalar(value, field.type), rows.num_rows))
    return rows


def _cached_rows(cache: Path, folder: Path, on_disk: dict[str, tuple[int, int]]) -> pa.Table | None:
    """The cached rows whose file is there, as it was when cached; None when there is no
    cache, or it cannot be read, or its layout is not the ledger files' own."""
    try:
        held = pq.read_table(cache)
    except (OSError, pa.ArrowInvalid):
        return None
    own = pa.schema([*pq.read_schema(folder / next(iter(on_disk))), *_IDENTITY])
    if not held.schema.equals(own):
        return None
    files, sizes, mtimes = (held.column(c).to_pylist() for c in _IDENTITY.names)
    return held.filter(pa.array([on_disk.get(f) == (s, m) for f, s, m in zip(files, sizes, mtimes)]))


def committed_files(home: Home, table: str, ledger: str = "submissions") -> list[str]:
    batches = {r["batch_id"] for r in read_ledger(home, ledger) if r.get("status", "accepted") == "accepted"}
    return [str(p) for p in sorted(table_dir(home, table).glob("*.parquet")) if p.stem in batches]


@dataclass(frozen=True)
class VersionSet:
    """Versions of records, as two Arrow string arrays: each version's text (version_texts)
    and its content hash."""
    texts: pa.Array
    hashes: pa.Array

    @staticmethod
    def empty() -> "VersionSet":
        return VersionSet(pa.array([], pa.string()), pa.array([], pa.string()))


def version_texts(keys: list[pa.Array], recorded_us: pa.Array) -> pa.Array:
    """A version's text: its record's key column(s) and recorded_at (microseconds since the
    epoch at UTC, in decimal), joined by US. Equal exactly when the versions are: only the
    last key may hold a US (a retraction's first key, record_type, is a word of the
    contract's vocabulary), and the microseconds, digits, follow the last US."""
    return pc.binary_join_element_wise(*keys, recorded_us.cast(pa.string()), "\x1f")


def versions(home: Home, table: str, site_id: str | None, key_columns: list[str],
             ledger: str = "submissions", ledger_rows: list[dict] | None = None) -> VersionSet:
    """Every committed event's version and content hash, of a site (or of all sites).
    `ledger_rows`, when the caller holds the ledger already, saves reading it again and
    narrows the files to the site's batches."""
    if ledger_rows is None:
        files = committed_files(home, table, ledger)
    else:
        batches = {r["batch_id"] for r in ledger_rows if r.get("status", "accepted") == "accepted"
                   and (site_id is None or r.get("site_id") == site_id)}
        files = [str(p) for p in (table_dir(home, table) / f"{b}.parquet" for b in sorted(batches)) if p.exists()]
    if not files:
        return VersionSet.empty()
    cols = ", ".join(key_columns)
    where = "WHERE site_id = $site" if site_id is not None else ""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        rows = con.sql(f"SELECT {cols}, epoch_us(recorded_at) AS recorded_us, content_hash "
                       f"FROM read_parquet($files) {where}",
                       params={"files": files, **({"site": site_id} if site_id is not None else {})}).to_arrow_table()
    column = {c: rows[c].combine_chunks() for c in rows.column_names}
    return VersionSet(version_texts([column[c].cast(pa.string()) for c in key_columns], column["recorded_us"]),
                      column["content_hash"].cast(pa.string()))


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
            self._open[target] = (tmp, pq.ParquetWriter(tmp, data.schema, compression="zstd",
                                                        use_dictionary=event_schema.dictionary_columns(data.schema)))
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
    Call it only while holding the ingest lock: no writer of events is running then. A
    process writing the ledger cache outside the lock (`report`) may lose that write to
    the sweep; it then reads without the cache, as read_ledger allows."""
    removed = 0
    for folder in (home.events, home.quarantine, home.cache):
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
