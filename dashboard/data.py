"""Read-only access to the warehouse, and the wording every page shares.

The warehouse file ($SAFETY_LEDGER_HOME/warehouse/safety.duckdb) is rebuilt under a
temporary name and renamed over the old one.  The dashboard keeps one read-only
connection per file identity (path, inode, mtime, size): an in-memory DuckDB that ATTACHes
the file READ_ONLY (a plain duckdb.connect(path) would be handed the instance already open
on that path, i.e. the old file), shared by every session, with a cursor per query.  A
rebuilt file has a new identity, so the next rerun opens it, and the connection to the old
file is closed once no query is using it.  Results are cached under the same identity, so
an unchanged file is not read twice.

The one thing the dashboard writes is a warehouse built "as of" a board date, on request
(board_views / build_as_of): <home>/warehouse/as_of/<YYYY-MM-DD>.duckdb, by the core's
build function (published atomically, like every build); the events are never touched.
"""
from __future__ import annotations

import csv
import io
import json
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any, Sequence

import duckdb
import pandas as pd
import streamlit as st

from safety_ledger.definitions import DEFINITIONS  # noqa: F401  (pages read d.DEFINITIONS)
from safety_ledger.figures import (  # noqa: F401  (pages read them as d.fmt_pct, d.wilson...)
    DASH, Z, as_int, fmt_ci, fmt_int, fmt_pct, fmt_ratio, fmt_time, is_null, label_of, plural,
    rate_sentence, wilson)
from safety_ledger.home import Home



class WarehouseError(Exception):
    """The warehouse file exists but could not be read."""


LIVE = "live"
BOARD_VIEW_KEY = "board_view"  # st.session_state: LIVE or an as-of date "YYYY-MM-DD"
PENDING_VIEW_KEY = "_board_view_pending"  # set by the sidebar's Build button, then rerun


def live_warehouse_path() -> Path:
    return Home.from_env().warehouse


def as_of_folder() -> Path:
    return Home.from_env().warehouse.parent / "as_of"


def as_of_path(day: date) -> Path:
    return as_of_folder() / f"{day.isoformat()}.duckdb"


def as_of_time(day: date) -> datetime:
    """The board date's cut: every event ingested by the end of that day, UTC."""
    return datetime.combine(day, time(23, 59, 59, 999999), tzinfo=timezone.utc)


def board_views() -> list[date]:
    """The as-of warehouses built so far, newest board date first."""
    found = []
    folder = as_of_folder()
    if folder.is_dir():
        for p in folder.glob("*.duckdb"):
            try:
                found.append(date.fromisoformat(p.stem))
            except ValueError:
                continue
    return sorted(found, reverse=True)


def build_as_of(day: date) -> Path:
    """Build the warehouse as of the end of `day` (UTC) beside the live one, with the core's
    build function (safety_ledger.build.build(home, as_of=T, out=...)), and return its path.
    The live warehouse is not touched."""
    from safety_ledger.build import build  # the core only: never Airflow

    out = as_of_path(day)
    out.parent.mkdir(parents=True, exist_ok=True)
    build(Home.from_env(), as_of=as_of_time(day), out=out, progress=lambda _line: None)
    return out


def selected_view() -> str:
    """LIVE, or the ISO board date of the as-of warehouse chosen in the sidebar."""
    try:
        ss = st.session_state
        if PENDING_VIEW_KEY in ss:  # applied before the sidebar's widget exists in this run
            ss[BOARD_VIEW_KEY] = ss.pop(PENDING_VIEW_KEY)
        v = ss.get(BOARD_VIEW_KEY, LIVE)
    except Exception:  # outside a Streamlit run (bench, scripts)
        return LIVE
    return v if isinstance(v, str) and v else LIVE


def warehouse_path() -> Path:
    view = selected_view()
    if view != LIVE:
        try:
            return as_of_path(date.fromisoformat(view))
        except ValueError:
            pass
    return live_warehouse_path()


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        s = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (s.st_ino, s.st_mtime_ns, s.st_size)


class SharedConnection:
    """One read-only connection to one warehouse file identity, shared by all sessions.

    Each query gets its own cursor (a DuckDB connection of the same instance, safe to use
    from its own thread).  `retire()` closes it once the last running query ends."""

    def __init__(self, path: str):
        self._lock = threading.Lock()
        self._active = 0
        self._retired = False
        self.closed = False
        con = duckdb.connect()  # in-memory; the file is attached, so never a stale instance
        try:
            con.execute("ATTACH ? AS w (READ_ONLY)", [path])
            con.execute("USE w")
        except BaseException:
            con.close()
            raise
        self._con = con

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        with self._lock:
            if self.closed:
                raise duckdb.ConnectionException("the warehouse connection was closed "
                                                 "(the file was rebuilt)")
            cur = self._con.cursor()
            self._active += 1
        try:
            cur.execute("USE w")
            return cur.execute(sql, list(params) if params else None).df()
        finally:
            cur.close()
            with self._lock:
                self._active -= 1
                if self._retired and self._active == 0:
                    self._close()

    def retire(self) -> None:
        with self._lock:
            self._retired = True
            if self._active == 0:
                self._close()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self._con.close()


_CURRENT: dict[str, tuple[tuple[int, int, int], SharedConnection]] = {}
_CURRENT_LOCK = threading.Lock()


@st.cache_resource(max_entries=16, show_spinner=False)
def _connection(path: str, signature: tuple[int, int, int]) -> SharedConnection:
    # Keyed by the file's identity: a rebuilt file (new inode, mtime or size) gets a new
    # connection, and the one to the file it replaced is retired.
    con = SharedConnection(path)
    with _CURRENT_LOCK:
        old = _CURRENT.get(path)
        _CURRENT[path] = (signature, con)
    if old is not None and old[0] != signature:
        old[1].retire()
    return con


def _query(path: str, signature: tuple[int, int, int], sql: str,
           params: tuple[Any, ...] = ()) -> pd.DataFrame:
    con = _connection(path, signature)
    if con.closed:  # retired although its file is back (cannot normally happen)
        _connection.clear()
        con = _connection(path, signature)
    return con.query(sql, params)


@st.cache_data(max_entries=512, show_spinner=False)
def _run(path: str, signature: tuple[int, int, int], sql: str,
         params: tuple[Any, ...] = ()) -> pd.DataFrame:
    # `signature` is part of the cache key: a rebuilt file has a new one.
    return _query(path, signature, sql, params)


@dataclass(frozen=True)
class Warehouse:
    path: Path
    signature: tuple[int, int, int] | None
    tables: frozenset[str]
    error: str | None = None
    core_tables: frozenset[str] = frozenset()

    @property
    def exists(self) -> bool:
        return self.signature is not None

    @property
    def usable(self) -> bool:
        return self.exists and self.error is None and bool(self.tables)

    def has(self, name: str) -> bool:
        return name in self.tables

    def sql(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        if self.signature is None:
            raise WarehouseError(f"no warehouse at {self.path}")
        try:
            return _run(str(self.path), self.signature, sql, tuple(params))
        except duckdb.Error as e:
            raise WarehouseError(f"{type(e).__name__}: {e}") from e

    def has_core(self, name: str) -> bool:
        return name in self.core_tables

    def table(self, name: str) -> pd.DataFrame | None:
        """All rows of marts.<name>, or None when the warehouse has no such table."""
        if name not in self.tables:
            return None
        return self.sql(f'select * from marts."{name}"')


# Data issues counted per site and issue, for the Overview and the Sites page (the rows
# themselves are tens of thousands in a large program: counted in DuckDB, not in pandas)
ISSUE_COUNTS_SQL = ("select site_id, issue, count(*) as records from marts.data_issues "
                    "group by all order by all")

TABLES_SQL = ("select table_schema, table_name from information_schema.tables "
              "where table_schema in ('marts', 'core')")


def warehouse() -> Warehouse:
    """The warehouse the board shows: the live file, or the as-of file chosen in the sidebar."""
    path = warehouse_path()
    sig = _signature(path)
    if sig is None or not path.is_file():
        return Warehouse(path, None, frozenset())
    try:
        df = _run(str(path), sig, TABLES_SQL)
    except duckdb.Error as e:
        return Warehouse(path, sig, frozenset(), error=f"{type(e).__name__}: {e}")
    marts = frozenset(str(t) for s_, t in zip(df["table_schema"], df["table_name"]) if s_ == "marts")
    core = frozenset(str(t) for s_, t in zip(df["table_schema"], df["table_name"]) if s_ == "core")
    return Warehouse(path, sig, marts, core_tables=core)


def no_warehouse_message(wh: Warehouse) -> str:
    if wh.exists and wh.error:
        return (f"The warehouse at {wh.path} could not be read ({wh.error}). "
                "Run `safety-ledger build` to rebuild it.")
    return (f"No warehouse yet at {wh.path}. "
            "Run `safety-ledger demo --no-dashboard` or `safety-ledger build`.")


def missing_table_message(wh: Warehouse, *names: str) -> str:
    listed = ", ".join(f"`marts.{n}`" for n in names)
    return (f"The warehouse at {wh.path} has no {listed} yet. "
            "Run `safety-ledger build` to rebuild it with the current transforms.")


def require(wh: Warehouse, *names: str) -> bool:
    """True when every table is there; otherwise says which are missing and returns False."""
    missing = [n for n in names if not wh.has(n)]
    if missing:
        st.info(missing_table_message(wh, *missing))
        return False
    return True


# ---------------------------------------------------------------------------- numbers


def fmt_month(x: Any) -> str:
    if is_null(x):
        return DASH
    try:
        return pd.Timestamp(x).strftime("%Y-%m")
    except (ValueError, TypeError):
        return str(x)


# ---------------------------------------------------------------------------- tables


def with_ci(df: pd.DataFrame, k: str, n: str, rate: str, lo: str, hi: str) -> pd.DataFrame:
    """Fill a rate and its interval from k/n where the mart has no such column."""
    df = df.copy()
    if rate not in df.columns or lo not in df.columns or hi not in df.columns:
        w = [wilson(a, b) for a, b in zip(df.get(k, []), df.get(n, []))]
        if rate not in df.columns:
            df[rate] = [t[0] for t in w]
        if lo not in df.columns:
            df[lo] = [t[1] for t in w]
        if hi not in df.columns:
            df[hi] = [t[2] for t in w]
    return df


def rate_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A reaction_rate_by_* mart with grade 3+ intervals present (computed when absent)."""
    df = with_ci(df, "reaction_infusions", "infusions", "reaction_rate", "ci_low", "ci_high")
    return with_ci(df, "grade3plus_infusions", "infusions", "grade3plus_rate",
                   "grade3plus_ci_low", "grade3plus_ci_high")


def rate_table(df: pd.DataFrame, key: str, key_label: str) -> pd.DataFrame:
    """Display table of a reaction_rate_by_* mart: numerators, denominators, rates, CIs."""
    df = rate_frame(df)
    out = pd.DataFrame({key_label: [label_of(v) for v in df[key]]})
    out["Infusions"] = [fmt_int(v) for v in df["infusions"]]
    out["With reaction"] = [fmt_int(v) for v in df["reaction_infusions"]]
    out["Reaction rate"] = [fmt_pct(v) for v in df["reaction_rate"]]
    out["Reaction rate 95% CI"] = [fmt_ci(a, b) for a, b in zip(df["ci_low"], df["ci_high"])]
    out["Grade 3+ infusions"] = [fmt_int(v) for v in df["grade3plus_infusions"]]
    out["Grade 3+ rate"] = [fmt_pct(v) for v in df["grade3plus_rate"]]
    out["Grade 3+ 95% CI"] = [fmt_ci(a, b) for a, b in
                              zip(df["grade3plus_ci_low"], df["grade3plus_ci_high"])]
    if "patients" in df.columns:
        out["Patients"] = [fmt_int(v) for v in df["patients"]]
    return out


def totals(wh: Warehouse) -> dict[str, Any] | None:
    """Whole-study infusions, reactions, grade 3+ and patients, summed over a partition.

    Sites and tumor types partition both infusions and patients (a patient has one site
    and one tumor type), so their rows add up; cycles do not partition patients.
    """
    for name in ("reaction_rate_by_site", "reaction_rate_by_tumor_type"):
        df = wh.table(name)
        if df is None:
            continue
        out = {"source": name}
        for col in ("infusions", "reaction_infusions", "grade3plus_infusions", "patients"):
            out[col] = int(df[col].fillna(0).sum()) if col in df.columns else None
        return out
    return None


# ---------------------------------------------------------------------------- build info


def _flatten_counts(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("{"):
            try:
                value = json.loads(s)
            except ValueError:
                return {prefix: value} if prefix else {}
    if isinstance(value, dict) and set(value) == {"key", "value"}:  # a DuckDB MAP
        try:
            value = dict(zip(value["key"], value["value"]))
        except TypeError:
            pass
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten_counts(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value} if prefix else {}


def build_info(wh: Warehouse) -> dict[str, Any] | None:
    """built_at, as_of and an {events table: count} dict from marts.build_info, read defensively."""
    df = wh.table("build_info")
    if df is None or df.empty:
        return None
    if "built_at" in df.columns and len(df) > 1:
        df = df.sort_values("built_at", ascending=False, na_position="last")
    row = df.iloc[0].to_dict()
    info: dict[str, Any] = {"built_at": row.pop("built_at", None), "as_of": row.pop("as_of", None)}
    events: dict[str, Any] = {}
    for col, value in row.items():
        flat = _flatten_counts(value, "") if isinstance(value, (dict, str)) else {}
        if flat:  # a JSON column: {"infusions": 366, ...}
            for k, v in flat.items():
                events[k if "event" in col else f"{col}.{k}"] = v
        elif isinstance(value, (list, tuple)) or not is_null(value):
            events[col] = value  # a column per table
    info["events"] = events
    return info


# ---------------------------------------------------------------------------- layout


def narrow(*columns: str) -> dict[str, Any]:
    """column_config giving these columns (short header, short values) a small width."""
    return {c: st.column_config.TextColumn(width="small") for c in columns}


def headline(label: str, value: str, detail: str, definition: str | None = None) -> None:
    """A bordered card: the figure, the sentence with its denominator, its definition."""
    with st.container(border=True):
        st.metric(label, value)
        st.markdown(detail)
        if definition:
            st.caption(definition)


# ---------------------------------------------------------------------------- CSV


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe_cell(value: Any) -> Any:
    """A text cell that a spreadsheet could read as a formula (it starts with = + - @ TAB
    or CR: OWASP, CSV Injection) is prefixed with a single quote; anything else as it is.
    Numbers are left alone: a number is not a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_bytes(df: pd.DataFrame) -> bytes:
    """The table as UTF-8 CSV (RFC 4180 quoting), every text cell and header made safe."""
    out = df.copy()
    out.columns = [csv_safe_cell(str(c)) for c in out.columns]
    for c in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[c]) or pd.api.types.is_bool_dtype(out[c])):
            out[c] = [csv_safe_cell(v if isinstance(v, str) or is_null(v) else str(v))
                      for v in out[c]]
    buf = io.StringIO()
    out.to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    return buf.getvalue().encode("utf-8")


def download(df: pd.DataFrame, name: str, key: str) -> None:
    """A "Download CSV" button under a table (cells safe from formula injection)."""
    st.download_button("Download CSV", data=csv_bytes(df), file_name=f"{name}.csv",
                       mime="text/csv", key=f"download_{key}", icon=":material/download:",
                       on_click="ignore")
