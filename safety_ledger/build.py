"""The warehouse build: replay the committed events into DuckDB, publish atomically.

    build(home)  ->  $SAFETY_LEDGER_HOME/warehouse/safety.duckdb

1. A new DuckDB file is created under a temporary name beside the target.
2. The committed events are loaded (see `SOURCES`) and `warehouse/sources.sql` exposes
   them as `raw.<table>`, keeping only batches ingested at or before `as_of`.
3. `transforms/macros.sql`, then every model of `transforms/staging`, `transforms/core`
   and `transforms/marts` (one `CREATE OR REPLACE TABLE|VIEW <stage>.<file stem>` per
   file), each stage in dependency order (see `model_order`).
4. CHECKPOINT, close, fsync, `os.replace` onto the target: a reader holding the old
   file keeps reading the old file; a new reader gets the whole new one.

`warehouse/README.md` documents the semantics for analysts.
"""
from __future__ import annotations

import fcntl
import math
import os
import re
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import duckdb
import pyarrow as pa

from . import event_schema
from .atomic import fsync_dir
from .faults import fault_point
from .home import Home

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WAREHOUSE_DIR = PROJECT_ROOT / "warehouse"
TRANSFORMS_DIR = PROJECT_ROOT / "transforms"
STAGES = ("staging", "core", "marts")

# Event tables read by the build, in load order (ledgers first).
RAW_TABLES = ("submissions", "patients", "infusions", "reactions", "iraes", "retractions",
              "quarantine", "literature_drops", "literature")


@dataclass
class BuildSummary:
    path: Path
    as_of: datetime | None
    built_at: datetime
    events: dict[str, int] = field(default_factory=dict)   # raw.<table> -> rows used
    marts: dict[str, int] = field(default_factory=dict)    # marts.<table> -> rows
    seconds: float = 0.0


# ---------------------------------------------------------------------------- sources


def _schema_of(table: str) -> pa.Schema:
    return event_schema.schema(table)  # includes the ledgers and quarantine


def _parquet_stems(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.name[: -len(".parquet")]: p for p in sorted(folder.glob("*.parquet"))
            if p.is_file() and not p.name.startswith(".")}


@dataclass
class _Landed:
    files: dict[str, list[Path]]  # table -> the committed files to read
    ignored_files: int  # events files of a batch with no ledger file (crash leftovers)


def land(home: Home) -> _Landed:
    """Find every events file of a committed batch (one whose ledger file exists).

    The as_of cut is not made here but in warehouse/sources.sql, from the ledger rows.
    """
    events = home.events
    ledger = _parquet_stems(events / "submissions")
    drops = _parquet_stems(events / "literature_drops")
    folders = {t: events / t for t in event_schema.TABLES}
    folders["quarantine"] = home.quarantine
    folders["literature"] = events / "literature"
    commit_points = {t: ledger for t in folders}
    commit_points["literature"] = drops
    commit_points["quarantine"] = {**ledger, **drops}  # both kinds of batch quarantine rows

    tables = {"submissions": list(ledger.values()), "literature_drops": list(drops.values())}
    ignored = 0
    for t, folder in folders.items():
        files = _parquet_stems(folder)
        committed = [p for stem, p in files.items() if stem in commit_points[t]]
        ignored += len(files) - len(committed)
        tables[t] = committed
    return _Landed(tables, ignored)


def _expose(con: duckdb.DuckDBPyConnection, name: str, files: list[Path]) -> None:
    """landed_<name>: the committed files, read by DuckDB itself (streamed, in parallel),
    with exactly the columns of the event schema; no file = an empty relation of it."""
    schema = _schema_of(name)
    if not files:
        con.register(f"landed_{name}", schema.empty_table())
        return
    paths = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
    columns = ", ".join(f'"{c}"' for c in schema.names)
    con.execute(f"CREATE OR REPLACE TEMP VIEW landed_{name} AS SELECT {columns} FROM read_parquet([{paths}])")


# ---------------------------------------------------------------------------- models


_CREATE = re.compile(r"\bCREATE\s+OR\s+REPLACE\s+(TABLE|VIEW)\s+(\w+)\.(\w+)\s+AS\b", re.I)


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


@dataclass(frozen=True)
class Model:
    stage: str
    name: str
    kind: str  # TABLE | VIEW
    path: Path
    sql: str
    depends_on: frozenset[str]  # models of the same stage it reads


def read_models(stage: str, root: Path | None = None) -> list[Model]:
    """Every model of one stage (under `root`, default transforms/).  A file
    `<stage>/<name>.sql` holds exactly one `CREATE OR REPLACE TABLE|VIEW <stage>.<name> AS ...`."""
    paths = sorted(((root or TRANSFORMS_DIR) / stage).glob("*.sql"))
    names = {p.stem for p in paths}
    models = []
    for p in paths:
        sql = p.read_text(encoding="utf-8")
        code = _strip_comments(sql)
        creates = _CREATE.findall(code)
        if len(creates) != 1 or creates[0][1].lower() != stage or creates[0][2] != p.stem:
            raise ValueError(f"{p}: must hold exactly one CREATE OR REPLACE TABLE|VIEW "
                             f"{stage}.{p.stem} AS ... (found {creates})")
        refs = set(re.findall(rf"\b{stage}\.(\w+)\b", code, flags=re.I)) - {p.stem}
        models.append(Model(stage, p.stem, creates[0][0].upper(), p, sql,
                            frozenset(refs & names)))
    return models


def model_order(models: list[Model]) -> list[Model]:
    """Dependency order within a stage: a model runs after every model of its stage it
    references (`<stage>.<name>` in its SQL); among models whose dependencies are met,
    file-name order.  (Earlier stages are complete before a stage starts.)"""
    by_name = {m.name: m for m in models}
    done: list[Model] = []
    done_names: set[str] = set()
    pending = sorted(by_name)
    while pending:
        ready = [n for n in pending if by_name[n].depends_on <= done_names]
        if not ready:
            raise ValueError(f"dependency cycle among {', '.join(pending)}")
        n = ready[0]
        done.append(by_name[n])
        done_names.add(n)
        pending.remove(n)
    return done


# ---------------------------------------------------------------------------- UDF


def binom_quantile(q: float, n: int, p: float) -> int | None:
    """Smallest k with P(X <= k) >= q for X ~ Binomial(n, p) (scipy's binom.ppf)."""
    from scipy.stats import binom

    if q is None or n is None or p is None or n < 0 or math.isnan(p):
        return None
    p = min(1.0, max(0.0, p))  # a pooled sum may overshoot 1 by a rounding error
    k = binom.ppf(q, n, p)
    return None if math.isnan(k) else int(k)


def _register_udfs(con: duckdb.DuckDBPyConnection) -> None:
    from duckdb.sqltypes import BIGINT, DOUBLE

    con.create_function("binom_quantile", binom_quantile, [DOUBLE, BIGINT, DOUBLE], BIGINT,
                        side_effects=False)
    # The binomial MaxSPRT of marts.signals (core.signal_design): its critical value and
    # its exact signal probability (safety_ledger/signals.py).
    from .signals import maxsprt_critical_value, maxsprt_signal_probability

    con.create_function("maxsprt_critical_value", maxsprt_critical_value,
                        [DOUBLE, BIGINT, DOUBLE, BIGINT], DOUBLE, side_effects=False)
    con.create_function("maxsprt_signal_probability", maxsprt_signal_probability,
                        [DOUBLE, DOUBLE, BIGINT, DOUBLE, BIGINT], DOUBLE, side_effects=False)


# ---------------------------------------------------------------------------- build


def _utc(ts: datetime | None) -> datetime | None:
    """as_of in UTC; a naive datetime is taken to be UTC already."""
    if ts is None:
        return None
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def build(home: Home, as_of: datetime | None = None, out: Path | None = None,
          progress: Callable[[str], None] = print) -> BuildSummary:
    """Build the warehouse from the committed events (as of `as_of`, if given) and
    publish it at `out` (default `home.warehouse`) by an atomic rename."""
    started = time.monotonic()
    as_of = _utc(as_of)
    built_at = datetime.now(timezone.utc)
    target = (Path(out) if out is not None else home.warehouse).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    summary = BuildSummary(path=target, as_of=as_of, built_at=built_at)
    with _build_lock(target):
        swept = _sweep_temporaries(target)
        if swept:
            progress(f"removed {swept} temporary file(s) of an interrupted build")
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.building"
        tmp_wal = Path(f"{tmp}.wal")
        try:
            con = duckdb.connect(str(tmp))
            try:
                _build_into(con, home, as_of, built_at, summary, progress)
                con.execute("CHECKPOINT")
            finally:
                con.close()
            if tmp_wal.exists():
                raise RuntimeError(f"{tmp_wal} remains after CHECKPOINT and close")
            _fsync_file(tmp)
            fault_point("before_publish")
            # A WAL beside the target belongs to the old file (someone opened the
            # warehouse read-write); replayed onto the new file it would corrupt it.
            Path(f"{target}.wal").unlink(missing_ok=True)
            os.replace(tmp, target)
            fsync_dir(target.parent)
        finally:
            tmp.unlink(missing_ok=True)
            tmp_wal.unlink(missing_ok=True)
    summary.seconds = time.monotonic() - started
    progress(f"published {target} ({summary.seconds:.1f} s)")
    return summary


@contextmanager
def _build_lock(target: Path) -> Iterator[None]:
    """One build at a time per target: a second one waits (the lock file stays)."""
    with open(target.parent / f".{target.name}.build.lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _sweep_temporaries(target: Path) -> int:
    """Remove what a killed build left beside the target (call under the build lock)."""
    removed = 0
    for p in target.parent.glob(f".{target.name}.*.building*"):
        p.unlink(missing_ok=True)
        removed += 1
    return removed


def _build_into(con: duckdb.DuckDBPyConnection, home: Home, as_of: datetime | None,
                built_at: datetime, summary: BuildSummary,
                progress: Callable[[str], None]) -> None:
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET VARIABLE as_of = ?::TIMESTAMPTZ", [as_of])
    con.execute("SET VARIABLE built_at = ?::TIMESTAMPTZ", [built_at])
    _register_udfs(con)

    # sources
    landed = land(home)
    for name, files in landed.files.items():
        _expose(con, name, files)
    con.execute((WAREHOUSE_DIR / "sources.sql").read_text(encoding="utf-8"))
    ledgers = {n: con.execute(f"SELECT count(*) FROM landed_{n}").fetchone()[0]
               for n in ("submissions", "literature_drops")}
    for name in RAW_TABLES:
        summary.events[name] = con.execute(f"SELECT count(*) FROM raw.{name}").fetchone()[0]
    later = sum(ledgers[n] - summary.events[n] for n in ledgers)
    counts = ", ".join(f"{n} {summary.events[n]}" for n in RAW_TABLES)
    notes = []
    if as_of is not None:
        notes.append(f"as of {as_of.isoformat()}: {later} later batch(es) left out")
    if landed.ignored_files:
        notes.append(f"{landed.ignored_files} uncommitted file(s) ignored")
    progress(f"sources: {counts}" + (f" ({'; '.join(notes)})" if notes else ""))

    # transforms
    con.execute((TRANSFORMS_DIR / "macros.sql").read_text(encoding="utf-8"))
    for stage in STAGES:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {stage}")
        models = model_order(read_models(stage))
        for m in models:
            try:
                con.execute(m.sql)
            except duckdb.Error as e:
                raise RuntimeError(f"model {stage}.{m.name} ({m.path}): {e}") from e
        if stage == "marts":
            for m in models:
                summary.marts[m.name] = con.execute(
                    f"SELECT count(*) FROM marts.{m.name}").fetchone()[0]
            progress("marts: " + ", ".join(f"{n} {c}" for n, c in summary.marts.items()))
        else:
            progress(f"{stage}: {len(models)} models ({', '.join(m.name for m in models)})")
