"""The warehouse build: replay the committed events into DuckDB, publish atomically.

    build(home)  ->  $SAFETY_LEDGER_HOME/warehouse/safety.duckdb

1. A new DuckDB file is created under a temporary name beside the target.
2. `warehouse/sources.sql` copies the committed ledger rows ingested at or before
   `as_of`; every other `raw.<table>` becomes a view over the event files of the accepted
   batches among them (`_expose_events`), read where they lie.
3. `transforms/macros.sql`, then every model of `transforms/staging`, `transforms/core`
   and `transforms/marts` (one `CREATE OR REPLACE TABLE|VIEW <stage>.<file stem>` per
   file), each stage in dependency order (see `model_order`).
4. CHECKPOINT, close, fsync, `os.replace` onto the target: a reader holding the old
   file keeps reading the old file; a new reader gets the whole new one.

Incremental build (`plan_build`): when the warehouse at the target was built by the same
code (same fingerprint of this file, the SQL and DuckDB) from batches that are all still
among the batches this build must show, the new file starts as a copy of it;
`warehouse/sources.sql` adds the ledger rows committed since, the `raw.*` views are made
again, `warehouse/incremental.sql` finds the records they can change, the per-record
models (`INCREMENTAL`) are recomputed for those records only, the aggregates of counts
(`BY_DIFFERENCE`) take out and put back the counts of those records' patients, and every
other model runs whole, as in a full replay.  Anything else (no previous file, another
fingerprint, an as_of that leaves out a batch it holds, a WAL beside it) is a full replay.

`warehouse/README.md` documents the semantics for analysts.
"""
from __future__ import annotations

import fcntl
import hashlib
import math
import os
import re
import shutil
import threading
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


# DuckDB settings of the build's connection.  Memory: the target is a peak RSS under
# 4 GB at 10 million events; DuckDB spills what does not fit to temp_directory.
BUILD_MEMORY_LIMIT = os.environ.get("SAFETY_LEDGER_BUILD_MEMORY", "3GB")

# After this many incremental builds in a row the next one is a full replay: it rewrites
# the file whole (an incremental build deletes and appends rows; the file keeps the
# space of deleted rows until their row groups are rewritten).
MAX_INCREMENTAL_IN_A_ROW = 50

# The per-record models an incremental build recomputes only for the records in scope:
# model -> (the scope table, from warehouse/incremental.sql, whose columns key the
# model's rows; {relation the model reads: the scope it is read through}).  The model's
# own SQL runs unchanged but for those relations, which it reads restricted to the
# scope; its rows of those keys are deleted first.  Every model not named here or in
# BY_DIFFERENCE (the other aggregates, the views, every other mart) runs whole in both builds.
INCREMENTAL: dict[str, tuple[str, dict[str, str]]] = {
    "core.corrected_versions": ("scope_record", {"staging.stg_patients": "scope_patient",
                                                 "staging.stg_infusions": "scope_infusion",
                                                 "staging.stg_reactions": "scope_reaction",
                                                 "staging.stg_iraes": "scope_irae"}),
    "core.patient_status": ("scope_patient", {"staging.stg_patients": "scope_patient"}),
    "core.infusion_status": ("scope_infusion", {"staging.stg_infusions": "scope_infusion"}),
    "core.reaction_status": ("scope_reaction", {"staging.stg_reactions": "scope_reaction"}),
    "core.irae_status": ("scope_irae", {"staging.stg_iraes": "scope_irae"}),
    "core.infusion_outcomes": ("scope_outcome", {"core.current_infusions": "scope_outcome"}),
    "core.patient_rechallenge": ("scope_rechallenge", {"core.infusion_outcomes": "scope_rechallenge"}),
    "core.irae_cohort": ("scope_cohort", {"core.current_patients": "scope_cohort"}),
    # one row per record with a data issue: the issues of a record come from its own
    # *_status row, or from its retractions and whether it was received (its status)
    "marts.data_issues": ("scope_record", {"core.patient_status": "scope_patient",
                                           "core.infusion_status": "scope_infusion",
                                           "core.reaction_status": "scope_reaction",
                                           "core.irae_status": "scope_irae",
                                           "staging.stg_retractions": "scope_record"}),
}


@dataclass(frozen=True)
class ByDifference:
    """How an incremental build updates an aggregate core model of counts.

    `reads` maps each relation the model reads to a scope of warehouse/incremental.sql
    whose keys partition it: every row of the relation that the new batches can change
    belongs to a key of the scope.  The relations must be tables of INCREMENTAL (the
    previous build's until the core stage changes them).  The model groups by `keys`;
    every other column is a count that adds up over the scope's keys (a count of
    distinct patients too, when the keys are patients); `rows` is its count(*)."""
    reads: dict[str, str]
    keys: tuple[str, ...]
    rows: str


# The aggregate core models an incremental build updates by difference: the previous
# table, less the counts of the scope's rows before the core stage changes them, plus
# their counts after it (BY_DIFFERENCE).  A group whose rows fall to 0 is dropped.
BY_DIFFERENCE: dict[str, ByDifference] = {
    "core.reaction_counts": ByDifference({"core.infusion_outcomes": "scope_rechallenge"},
                                         ("dimension", "cycle", "tumor_type", "regimen_class", "site_id"),
                                         "infusions"),
    "core.treated_patients_by_month": ByDifference({"core.infusion_outcomes": "scope_rechallenge"},
                                                   ("month",), "infusions"),
}


@dataclass
class BuildSummary:
    path: Path
    as_of: datetime | None
    built_at: datetime
    events: dict[str, int] = field(default_factory=dict)   # raw.<table> -> rows used
    marts: dict[str, int] = field(default_factory=dict)    # marts.<table> -> rows (tables only)
    seconds: float = 0.0
    mode: str = "full"          # "full" or "incremental"
    reason: str = ""            # why a full replay, or what the incremental build added
    new_batches: int = 0        # batches added by an incremental build
    model_seconds: dict[str, float] = field(default_factory=dict)   # <stage>.<model> -> seconds
    copy_seconds: float = 0.0        # copying the previous warehouse (incremental)
    checkpoint_seconds: float = 0.0  # CHECKPOINT and fsync of the new file


# ---------------------------------------------------------------------------- sources


def _schema_of(table: str) -> pa.Schema:
    return event_schema.schema(table)  # includes the ledgers and quarantine


def _parquet_stems(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.parquet"))
            if p.is_file() and not p.name.startswith(".")}


@dataclass
class _Landed:
    files: dict[str, list[Path]]  # table -> the committed files to read
    ignored_files: int  # events files of a batch with no ledger file (crash leftovers)


def land(home: Home) -> _Landed:
    """Find every events file of a committed batch (one whose ledger file exists).

    The as_of cut is not made here but on the ledger rows (`_expose_ledgers`).
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


LEDGERS = ("submissions", "literature_drops")


def _expose(con: duckdb.DuckDBPyConnection, view: str, table: str, files: list[Path]) -> None:
    """The view `view` over these event files of `table`, read by DuckDB itself (streamed,
    in parallel), with exactly the columns of the event schema; no file = an empty view
    of that schema.  A view named without a schema is temporary (this build's only)."""
    schema = _schema_of(table)
    if files:
        paths = ", ".join("'" + str(p.resolve()).replace("'", "''") + "'" for p in files)
        columns = ", ".join(f'"{c}"' for c in schema.names)
        select = f"SELECT {columns} FROM read_parquet([{paths}])"
    else:
        con.register("empty_event_table", schema.empty_table())
        typed = con.execute("DESCRIBE empty_event_table").fetchall()
        con.unregister("empty_event_table")
        select = "SELECT " + ", ".join(f'NULL::{t} AS "{c}"' for c, t, *_ in typed) + " WHERE false"
    temp = "" if "." in view else "TEMP "
    con.execute(f"CREATE OR REPLACE {temp}VIEW {view} AS {select}")


def _expose_ledgers(con: duckdb.DuckDBPyConnection, landed: _Landed) -> None:
    """landed_<ledger>: every committed ledger row; shown_<ledger>: those this build shows,
    ingested at or before the variable as_of (all of them when it is NULL).  The one
    place the as_of cut is made: sources.sql copies shown_*, plan_build compares with it."""
    for name in LEDGERS:
        _expose(con, f"landed_{name}", name, landed.files[name])
        con.execute(f"""CREATE OR REPLACE TEMP VIEW shown_{name} AS
                        SELECT * FROM landed_{name}
                        WHERE getvariable('as_of') IS NULL OR ingested_at <= getvariable('as_of')""")


def _expose_events(con: duckdb.DuckDBPyConnection, landed: _Landed) -> None:
    """raw.<table> for every table but the ledgers: a view over the files of the batches
    that count (temp view counted_batches, made by sources.sql).  The views stay in the
    warehouse and read the immutable event files where they lie, instead of a copy."""
    counted = {r[0] for r in con.execute("SELECT batch_id FROM counted_batches").fetchall()}
    for name, files in landed.files.items():
        if name not in LEDGERS:
            _expose(con, f"raw.{name}", name,
                    [p for p in files if p.stem in counted])


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
          progress: Callable[[str], None] = print, incremental: bool = True) -> BuildSummary:
    """Build the warehouse from the committed events (as of `as_of`, if given) and
    publish it at `out` (default `home.warehouse`) by an atomic rename.

    With `incremental` (the default) the build starts from the warehouse already at the
    target when `plan_build` finds that allowed, else it replays every event; the
    progress says which it did and why (`BuildSummary.mode`, `.reason`)."""
    started = time.monotonic()
    as_of = _utc(as_of)
    built_at = datetime.now(timezone.utc)
    target = (Path(out) if out is not None else home.warehouse).resolve()
    summary = BuildSummary(path=target, as_of=as_of, built_at=built_at)
    with build_lock(target, progress):
        swept = _sweep_temporaries(target)
        if swept:
            progress(f"removed {swept} temporary file(s) of an interrupted build")
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.building"
        tmp_wal = Path(f"{tmp}.wal")
        spill = Path(f"{tmp}.spill")
        try:
            _preload_scipy()
            fingerprint = code_fingerprint()
            landed = land(home)
            con, new_batches = None, None
            if incremental:
                began = time.monotonic()
                con, new_batches, why = plan_build(target, tmp, landed, as_of, fingerprint)
                summary.copy_seconds = time.monotonic() - began
            else:
                why = "incremental build not asked for"
            if con is None:
                summary.mode, summary.reason = "full", why
                con = duckdb.connect(str(tmp))
            else:
                summary.mode, summary.new_batches = "incremental", len(new_batches)
                summary.reason = f"{len(new_batches)} batch(es) committed since the previous build"
            try:
                _configure(con, spill)
                _build_into(con, landed, as_of, built_at, summary, progress, new_batches)
                _write_state(con, fingerprint, summary)
                began = time.monotonic()
                con.execute("CHECKPOINT")
            finally:
                con.close()
            if tmp_wal.exists():
                raise RuntimeError(f"{tmp_wal} remains after CHECKPOINT and close")
            _fsync_file(tmp)
            summary.checkpoint_seconds = time.monotonic() - began
            fault_point("before_publish")
            # A WAL beside the target belongs to the old file (someone opened the
            # warehouse read-write); replayed onto the new file it would corrupt it.
            Path(f"{target}.wal").unlink(missing_ok=True)
            os.replace(tmp, target)
            fsync_dir(target.parent)
        finally:
            tmp.unlink(missing_ok=True)
            tmp_wal.unlink(missing_ok=True)
            shutil.rmtree(spill, ignore_errors=True)
    summary.seconds = time.monotonic() - started
    progress(f"published {target} ({'incremental' if summary.mode == 'incremental' else 'full replay'}, "
             f"{summary.seconds:.1f} s; checkpoint and fsync {summary.checkpoint_seconds:.1f} s)")
    return summary


def _preload_scipy() -> None:
    """Import scipy.stats (binom_quantile's, about 1 s) in a thread while DuckDB works:
    the import is the same, it only overlaps the build instead of adding to it."""
    import sys
    import threading

    if "scipy.stats" not in sys.modules:
        threading.Thread(target=lambda: __import__("scipy.stats"), daemon=True).start()


def _configure(con: duckdb.DuckDBPyConnection, spill: Path) -> None:
    """Threads: DuckDB's default (one per core).  Memory: BUILD_MEMORY_LIMIT, spilling
    beside the file being built.  Insertion order: not kept where no ORDER BY asks for it
    (every model that needs an order says ORDER BY), which lets DuckDB write in parallel."""
    con.execute("SET memory_limit = ?", [BUILD_MEMORY_LIMIT])
    con.execute("SET temp_directory = ?", [str(spill)])
    con.execute("SET preserve_insertion_order = false")


# ---------------------------------------------------------------------------- incremental


def code_fingerprint() -> str:
    """SHA-256 of everything a warehouse's content depends on besides the events: this
    module, the event schema and UDFs, warehouse/*.sql, every transforms/**/*.sql (names
    and text) and the DuckDB version.  A warehouse built under another fingerprint is
    never the start of an incremental build."""
    h = hashlib.sha256(f"duckdb {duckdb.__version__}\n".encode())
    here = Path(__file__).resolve().parent
    files = [Path(__file__).resolve(), here / "event_schema.py", here / "signals.py",
             *sorted(WAREHOUSE_DIR.glob("*.sql")), *sorted(TRANSFORMS_DIR.rglob("*.sql"))]
    for f in files:
        h.update(f"{f.name}\n".encode())
        h.update(f.read_bytes() if f.exists() else b"(missing)")
        h.update(b"\0")
    return h.hexdigest()


def plan_build(target: Path, tmp: Path, landed: "_Landed", as_of: datetime | None,
               fingerprint: str) -> tuple[duckdb.DuckDBPyConnection | None, set[str] | None, str]:
    """Whether this build can start from the warehouse published at `target`.

    Yes when: the file exists with no WAL beside it; its meta.build_state was written by
    code with the same fingerprint, after fewer than MAX_INCREMENTAL_IN_A_ROW incremental
    builds in a row; and every ledger row it holds (raw.submissions, raw.literature_drops)
    is among the committed ledger rows this build must show (ingested at or before
    as_of), unchanged.  Then `target` is copied to `tmp` and (connection on tmp, the
    batch ids to add, "") is returned; else (None, None, why), with no copy left."""
    if not target.exists():
        return None, None, "no previous warehouse"
    if Path(f"{target}.wal").exists():
        return None, None, "a WAL beside the previous warehouse (it was opened read-write)"
    shutil.copyfile(target, tmp)
    con = duckdb.connect(str(tmp))
    why = ""
    try:
        con.execute("SET TimeZone = 'UTC'")
        try:
            state = con.execute("SELECT fingerprint, incremental_builds FROM meta.build_state").fetchone()
        except duckdb.Error:
            state = None
        if state is None:
            why = "the previous warehouse has no build state"
        elif state[0] != fingerprint:
            why = "the transforms, the build or DuckDB changed since the previous build"
        elif state[1] >= MAX_INCREMENTAL_IN_A_ROW:
            why = f"{state[1]} incremental builds in a row: the file is rewritten whole"
        else:
            con.execute("SET VARIABLE as_of = ?::TIMESTAMPTZ", [as_of])
            _expose_ledgers(con, landed)
            ledger = """SELECT '{n}' AS ledger, batch_id, ingested_at, status FROM {src}"""
            wanted = " UNION ALL ".join(ledger.format(n=n, src=f"shown_{n}") for n in LEDGERS)
            held = " UNION ALL ".join(ledger.format(n=n, src=f"raw.{n}") for n in LEDGERS)
            gone = con.execute(f"SELECT count(*) FROM (FROM ({held}) EXCEPT ALL FROM ({wanted}))").fetchone()[0]
            if gone:
                why = (f"the previous warehouse holds {gone} batch(es) this build must not show "
                       "(an earlier as_of, or a ledger row changed)")
            else:
                added = {r[0] for r in con.execute(
                    f"SELECT batch_id FROM (FROM ({wanted}) EXCEPT ALL FROM ({held}))").fetchall()}
                return con, added, ""
    except Exception:
        con.close()
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
        raise
    con.close()
    tmp.unlink(missing_ok=True)
    Path(f"{tmp}.wal").unlink(missing_ok=True)
    return None, None, why


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [d[0] for d in con.execute(f"SELECT * FROM {relation} LIMIT 0").description]


def _restricted(con: duckdb.DuckDBPyConnection, m: Model, reads: dict[str, str]) -> str | None:
    """Model m's SELECT with each relation of `reads` restricted to the keys of its scope
    (a temporary view per relation), or None when m is not a TABLE reading all of them
    (it no longer reads what INCREMENTAL or BY_DIFFERENCE says: it must run whole)."""
    code = _strip_comments(m.sql)
    head = _CREATE.search(code)
    body = code[head.end():].strip().rstrip(";")
    patterns = {relation: re.compile(rf"\b{re.escape(relation)}\b", re.I) for relation in reads}
    if head.group(1).upper() != "TABLE" or not all(p.search(body) for p in patterns.values()):
        return None
    for relation, scope in reads.items():
        view = f"scoped_{relation.replace('.', '_')}"
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT x.* FROM {relation} AS x "
                    f"SEMI JOIN {scope} USING ({', '.join(_columns(con, scope))})")
        body = patterns[relation].sub(view, body)
    return body


def _scoped(con: duckdb.DuckDBPyConnection, m: Model) -> None:
    """Recompute model m (a TABLE of INCREMENTAL) for the keys of its scope only: delete
    its rows of those keys, then insert what its own SELECT gives when the relations it
    reads through the scope are restricted to the scope's keys."""
    scope, reads = INCREMENTAL[f"{m.stage}.{m.name}"]
    body = _restricted(con, m, reads)
    if body is None:
        con.execute(m.sql)
        return
    keys = _columns(con, scope)
    match = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    con.execute(f"DELETE FROM {m.stage}.{m.name} AS t USING {scope} AS s WHERE {match}")
    con.execute(f"INSERT INTO {m.stage}.{m.name} BY NAME SELECT * FROM ({body})")


def _counts_before(con: duckdb.DuckDBPyConnection, models: list[Model]) -> None:
    """For each model of BY_DIFFERENCE, the temp table before_<model>: its counts over the
    scope's rows of the previous build (run before the core stage changes any table)."""
    for m in models:
        rule = BY_DIFFERENCE.get(f"{m.stage}.{m.name}")
        if rule is None:
            continue
        assert set(rule.reads) <= set(INCREMENTAL), f"{m.name}: reads a relation not kept by INCREMENTAL"
        body = _restricted(con, m, rule.reads)
        if body is not None:
            con.execute(f"CREATE OR REPLACE TEMP TABLE before_{m.stage}_{m.name} AS {body}")


def _by_difference(con: duckdb.DuckDBPyConnection, m: Model) -> None:
    """Model m (of BY_DIFFERENCE) = its previous table - its counts over the scope before
    (before_<model>) + its counts over the scope now, per group; groups left with no row
    dropped.  Without before_<model> (m no longer reads what BY_DIFFERENCE says) it runs
    whole."""
    rule = BY_DIFFERENCE[f"{m.stage}.{m.name}"]
    table, before = f"{m.stage}.{m.name}", f"before_{m.stage}_{m.name}"
    body = _restricted(con, m, rule.reads)
    if body is None or not con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary "
                                       "AND table_name = ?", [before]).fetchone()[0]:
        con.execute(m.sql)
        return
    types = dict(con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = ? "
                             "AND table_name = ? ORDER BY column_index", [m.stage, m.name]).fetchall())
    keys = ", ".join(rule.keys)
    counts = [c for c in types if c not in rule.keys]
    columns = ", ".join(c if c in rule.keys else f"sum({c})::{types[c]} AS {c}" for c in types)
    con.execute(f"""
        CREATE OR REPLACE TABLE {table} AS
        SELECT {columns}
        FROM (
            SELECT {keys}, {", ".join(counts)} FROM {table}
            UNION ALL
            SELECT {keys}, {", ".join(counts)} FROM ({body})
            UNION ALL
            SELECT {keys}, {", ".join(f"-{c}" for c in counts)} FROM {before}
        )
        GROUP BY {keys}
        HAVING sum({rule.rows}) <> 0""")


def _slowest(model_seconds: dict[str, float], stage: str, shown: int = 5) -> str:
    """The stage's time and its slowest models, for the build log."""
    own = {k.split(".", 1)[1]: v for k, v in model_seconds.items() if k.startswith(f"{stage}.")}
    top = sorted(own.items(), key=lambda kv: -kv[1])[:shown]
    return (f"{sum(own.values()):.1f} s; slowest " + ", ".join(f"{n} {s:.1f} s" for n, s in top))


def _write_state(con: duckdb.DuckDBPyConnection, fingerprint: str, summary: BuildSummary) -> None:
    """meta.build_state, one row: what the next build checks before starting from this file."""
    before = 0
    if summary.mode == "incremental":
        before = con.execute("SELECT incremental_builds FROM meta.build_state").fetchone()[0]
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute("""CREATE OR REPLACE TABLE meta.build_state AS
                   SELECT ?::VARCHAR AS fingerprint, ?::VARCHAR AS mode, ?::VARCHAR AS reason,
                          ?::TIMESTAMPTZ AS built_at, ?::TIMESTAMPTZ AS as_of,
                          ?::BIGINT AS incremental_builds""",
                [fingerprint, summary.mode, summary.reason, summary.built_at, summary.as_of,
                 before + 1 if summary.mode == "incremental" else 0])


_held = threading.local()   # .targets: the targets whose build lock this thread holds


@contextmanager
def build_lock(target: Path, progress: Callable[[str], None] = print) -> Iterator[None]:
    """One build at a time per target (the resolved path): a second one, in another
    process or thread, says so and waits (the lock file stays).  The thread that holds it
    may take it again, so that a caller can keep a target across several builds: `build
    --verify-replay` holds it from its build to the end of its check (replay_check.py)."""
    target = Path(target).resolve()
    if not hasattr(_held, "targets"):
        _held.targets = set()
    held = _held.targets
    if target in held:
        yield
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = target.parent / f".{target.name}.build.lock"
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"another build of {target} holds {lock} (a build, or a --verify-replay "
                     "check); waiting for it to finish")
            fcntl.flock(f, fcntl.LOCK_EX)
        held.add(target)
        try:
            yield
        finally:
            held.discard(target)
            fcntl.flock(f, fcntl.LOCK_UN)


def _sweep_temporaries(target: Path) -> int:
    """Remove what a killed build left beside the target (call under the build lock)."""
    removed = 0
    for p in target.parent.glob(f".{target.name}.*.building*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed += 1
    return removed


def _build_into(con: duckdb.DuckDBPyConnection, landed: _Landed,
                as_of: datetime | None, built_at: datetime, summary: BuildSummary,
                progress: Callable[[str], None], new_batches: set[str] | None = None) -> None:
    """Run sources, macros and every model on `con`.  new_batches None: a full replay
    into an empty file.  Else `con` holds a copy of the previous warehouse, and only the
    files of these batches are read (INCREMENTAL)."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET VARIABLE as_of = ?::TIMESTAMPTZ", [as_of])
    con.execute("SET VARIABLE built_at = ?::TIMESTAMPTZ", [built_at])
    _register_udfs(con)

    # sources
    _expose_ledgers(con, landed)
    con.execute((WAREHOUSE_DIR / "sources.sql").read_text(encoding="utf-8"))
    _expose_events(con, landed)
    if new_batches is not None:
        con.register("new_batches_list", pa.table({"batch_id": pa.array(sorted(new_batches), pa.string())}))
        con.execute("CREATE OR REPLACE TEMP TABLE new_batches AS SELECT batch_id FROM new_batches_list")
        con.unregister("new_batches_list")
        con.execute((WAREHOUSE_DIR / "incremental.sql").read_text(encoding="utf-8"))
    ledgers = {n: len(landed.files[n]) for n in LEDGERS}
    for name in RAW_TABLES:
        summary.events[name] = con.execute(f"SELECT count(*) FROM raw.{name}").fetchone()[0]
    later = sum(ledgers[n] - summary.events[n] for n in ledgers)
    counts = ", ".join(f"{n} {summary.events[n]}" for n in RAW_TABLES)
    if new_batches is None:
        notes = [f"full replay: {summary.reason}"]
    else:
        scopes = con.execute("SELECT count(*) FROM scope_record").fetchone()[0]
        notes = [f"incremental: {len(new_batches)} batch(es) committed since the previous build "
                 f"added to a copy of it (copied in {summary.copy_seconds:.1f} s), "
                 f"{scopes} record(s) in scope"]
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
        if new_batches is not None and stage == "core":
            began = time.monotonic()
            try:
                _counts_before(con, models)
            except duckdb.Error as e:
                raise RuntimeError(f"counts before the core stage (BY_DIFFERENCE): {e}") from e
            summary.model_seconds["core.(counts before)"] = time.monotonic() - began
        for m in models:
            began = time.monotonic()
            try:
                if new_batches is not None and f"{stage}.{m.name}" in INCREMENTAL:
                    _scoped(con, m)
                elif new_batches is not None and f"{stage}.{m.name}" in BY_DIFFERENCE:
                    _by_difference(con, m)
                else:
                    con.execute(m.sql)
            except duckdb.Error as e:
                raise RuntimeError(f"model {stage}.{m.name} ({m.path}): {e}") from e
            summary.model_seconds[f"{stage}.{m.name}"] = time.monotonic() - began
        if stage == "marts":
            # Rows of the tables; a view (patient_timeline) is computed when read, and
            # counting it would compute all of it (1.6 s at 10m events).
            for m in models:
                if m.kind == "TABLE":
                    summary.marts[m.name] = con.execute(
                        f"SELECT count(*) FROM marts.{m.name}").fetchone()[0]
            progress("marts: " + ", ".join(f"{m.name} {summary.marts.get(m.name, '(view)')}"
                                           for m in models)
                     + f"; {_slowest(summary.model_seconds, stage)}")
        else:
            progress(f"{stage}: {len(models)} models ({', '.join(m.name for m in models)}); "
                     + _slowest(summary.model_seconds, stage))
