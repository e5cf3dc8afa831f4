"""Every difference between two warehouse files: how an incremental build is proved
equal to a full replay of the same events (tests/test_build_incremental.py at small
scale, `make bench` at 10 million events).

Compared: the relations (tables and views) of every schema but `meta` (the build's own
bookkeeping), their columns and types, and their rows as multisets.  marts.build_info's
built_at (when each file was built) is left out.

The macros (transforms/macros.sql) are compared by their definitions.  A view whose SQL
is the same in both files is the same relation (it reads tables found equal, or the same
event files, with the same macros); a view defined differently has its rows compared.

Rows are compared by a fingerprint first: the count and the sum of a 64-bit hash of each
row (a nested column hashed as its text, see _nested), which DuckDB streams over
millions of rows in a second.  Only where fingerprints differ are the rows themselves
compared (EXCEPT ALL both ways; NULL matches NULL, and doubles are equal when SQL finds
them equal: -0.0 is 0.0, for the hash as for EXCEPT), to show examples.  Two different
multisets with the same count and hash sum would go unseen; for differences that are not
built to collide, the chance is about 1 in 2^64.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

LEFT_OUT = {("marts", "build_info", "built_at")}


def _view_sql(con: duckdb.DuckDBPyConnection, db: str, schema: str, name: str) -> str | None:
    """The view's SQL; None for a table."""
    row = con.execute("SELECT sql FROM duckdb_views() WHERE database_name = ? AND schema_name = ? "
                      "AND view_name = ?", [db, schema, name]).fetchone()
    return row[0] if row else None


def _macros(con: duckdb.DuckDBPyConnection, db: str) -> list[tuple]:
    return [(schema, name, tuple(parameters), sql) for schema, name, parameters, sql in con.execute(
        "SELECT schema_name, function_name, parameters, macro_definition FROM duckdb_functions() "
        "WHERE database_name = ? AND function_type IN ('macro', 'table_macro') AND NOT internal "
        "ORDER BY ALL", [db]).fetchall()]


def _relations(con: duckdb.DuckDBPyConnection, db: str) -> list[tuple[str, str]]:
    return [tuple(r) for r in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = ? AND table_schema <> 'meta' ORDER BY 1, 2", [db]).fetchall()]


def _columns(con: duckdb.DuckDBPyConnection, db: str, schema: str, name: str) -> list[tuple[str, str]]:
    return [tuple(r) for r in con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = ? AND table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position", [db, schema, name]).fetchall()]


@dataclass
class Comparison:
    differences: list[str] = field(default_factory=list)   # empty: the same warehouse
    relations: int = 0     # relations compared (in both files, with the same columns)
    rows: int = 0          # the rows of the tables among them, in `want`


def _nested(data_type: str) -> bool:
    """A list, array, struct, map or union: DuckDB's hash() gives NULL, [] and [NULL] the
    same value, so such a column is hashed as its text ('[]', '[NULL]', NULL: all differ)."""
    return data_type.endswith("]") or data_type.startswith(("STRUCT", "MAP", "UNION"))


def _sql_text(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def compare(got: Path, want: Path, names: tuple[str, str] = ("incremental", "full")) -> Comparison:
    """What differs between the warehouse files `got` and `want` (named `names` in the
    messages)."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        con.execute(f"ATTACH {_sql_text(got)} AS got (READ_ONLY)")
        con.execute(f"ATTACH {_sql_text(want)} AS want (READ_ONLY)")
        result = Comparison()
        out = result.differences
        mg, mw = _macros(con, "got"), _macros(con, "want")
        if mg != mw:
            out.append(f"macros differ: only {names[0]} {sorted(set(mg) - set(mw))}, "
                       f"only {names[1]} {sorted(set(mw) - set(mg))}")
        rg, rw = _relations(con, "got"), _relations(con, "want")
        if rg != rw:
            out.append(f"relations differ: only {names[0]} {sorted(set(rg) - set(rw))}, "
                       f"only {names[1]} {sorted(set(rw) - set(rg))}")
        for schema, name in sorted(set(rg) & set(rw)):
            cols = {db: _columns(con, db, schema, name) for db in ("got", "want")}
            if cols["got"] != cols["want"]:
                out.append(f"{schema}.{name}: columns differ ({names[0]} {cols['got']}, {names[1]} {cols['want']})")
                continue
            result.relations += 1
            views = {db: _view_sql(con, db, schema, name) for db in ("got", "want")}
            if views["want"] is not None and views["got"] == views["want"]:
                continue
            kept = [(c, t) for c, t in cols["want"] if (schema, name, c) not in LEFT_OUT]
            keep = ", ".join(f'"{c}"' for c, _ in kept)
            hashed = ", ".join(f'"{c}"::VARCHAR' if _nested(t) else f'"{c}"' for c, t in kept)
            fingerprint = {db: con.execute(f"SELECT count(*), coalesce(sum(hash({hashed})), 0) "
                                           f"FROM {db}.{schema}.{name}").fetchone() for db in ("got", "want")}
            if views["want"] is None:
                result.rows += fingerprint["want"][0]
            if fingerprint["got"] == fingerprint["want"]:
                continue
            found = False
            for a, b, label in (("got", "want", names[0]), ("want", "got", names[1])):
                extra = con.execute(f"SELECT {keep} FROM {a}.{schema}.{name} EXCEPT ALL "
                                    f"SELECT {keep} FROM {b}.{schema}.{name} LIMIT 3").fetchall()
                if extra:
                    found = True
                    rows = con.execute(f"SELECT count(*) FROM (SELECT {keep} FROM {a}.{schema}.{name} EXCEPT ALL "
                                       f"SELECT {keep} FROM {b}.{schema}.{name})").fetchone()[0]
                    out.append(f"{schema}.{name}: {rows} row(s) only in {label}, e.g. {extra[:2]}")
            if not found:   # not seen: equal values hash alike
                out.append(f"{schema}.{name}: the same rows, but row count and hash sum differ "
                           f"({names[0]} {fingerprint['got']}, {names[1]} {fingerprint['want']})")
        return result
    finally:
        con.close()
