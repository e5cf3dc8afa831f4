"""Runs the GX suites of `expectations/` over the rows of one file and says, for each
row, which rules it broke. Validation results and Data Docs are kept under the home:
`<home>/gx/` (the GX project) and `<home>/data_docs/index.html`.

The frame GX sees has patient_ref already pseudonymized: GX stores unexpected values
in its results and Data Docs, so the raw reference must never reach it.

GX sees one row per distinct value, not every row. Each rule reads one column (or two,
read together), and whether a row breaks it depends only on that row's value there: so
`validate` gives GX, for each such column group, one row per distinct value in the rows
to judge (a column that only has to be present: one row with it and one without), and
a row breaks a rule exactly when its value is one GX finds unexpected. The only rule
that compares two columns that are nearly unique per row (a date not after
recorded_at) is compared here, vectorized, into one true/false column that GX checks.
GX's cost is then about the same for 1,000 rows or 500,000, which lets one run serve a
whole wave. Its Data Docs count distinct values; the rows are counted in the ledger
and listed, with their rules, in the quarantine.

In ingest's worker processes GX is not even imported: a worker sends its batches of
distinct values to the parent process, which runs GX (GX_ELSEWHERE, set by
ingest_workers), so GX is imported and set up once per ingest, not once per process.
"""
from __future__ import annotations

import fcntl
import functools
import logging
import os
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402

from . import contract, suites  # noqa: E402
from .values import SHAPES, timestamp_micros  # noqa: E402
from .home import Home  # noqa: E402

DATASOURCE = "submission_rows"
DOCS_SITE = "safety_ledger_docs"


# step -> [seconds, calls] in this process; ingest adds its workers' (the GX share of an ingest)
STATS: dict[str, list] = {}


def _timed(fn):
    @functools.wraps(fn)
    def timed(*args, **kwargs):
        began = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent = STATS.setdefault(fn.__name__, [0.0, 0])
            spent[0] += time.perf_counter() - began
            spent[1] += 1
    return timed


def add_stats(other: dict[str, list]) -> None:
    """Add another process's STATS to this one's."""
    for name, (seconds, calls) in other.items():
        spent = STATS.setdefault(name, [0.0, 0])
        spent[0] += seconds
        spent[1] += calls


@dataclass(frozen=True)
class Violation:
    rule: str
    explain: str


@dataclass
class Parsed:
    """One chunk of one file, by column: the frame the suite reads (the cells as sent,
    Arrow strings, plus the derived columns it reads) and each column's typed values (NA
    where the cell is empty or does not parse)."""
    frame: pd.DataFrame
    typed: dict[str, pd.Series]


def by_distinct(fn, values: pd.Series) -> pd.Series:
    """fn(values), computed once per distinct value (a column repeats few values over
    many rows: cycles, doses, dates); NA stays NA. fn maps a Series element-wise."""
    codes, uniques = pd.factorize(values)
    done = fn(pd.Series(uniques)).array
    return pd.Series(pd.api.extensions.take(done, codes, allow_fill=True), index=values.index)


def _parsed(kind: str, cells: pd.Series) -> pd.Series:
    shaped = cells.where(cells.str.fullmatch(SHAPES[kind]).fillna(False).astype(bool))
    if kind in ("int", "float"):
        return pd.to_numeric(shaped, errors="coerce").astype("Float64")
    if kind == "date":   # a day that exists, in years 1 to 9999 (pandas would take year 0)
        days = pd.to_datetime(shaped, format="%Y-%m-%d", errors="coerce")
        return days.where(days.dt.year >= 1)
    return shaped  # list: the shape is the rule; the split is done when events are made


def _typed(kind: str, cells: pd.Series, texts: pa.Array) -> pd.Series:
    """Typed values of one column (`texts`: the same cells as Arrow strings), vectorized;
    NA where empty or unparseable. A timestamp is parsed in every row (vectorized,
    values.timestamp_micros), as its values are nearly all distinct; other kinds once
    per distinct value."""
    if kind == "timestamp":
        micros, valid = timestamp_micros(texts)
        instants = np.where(valid, micros, np.iinfo(np.int64).min).view("datetime64[us]")   # min: NaT
        return pd.Series(instants, index=cells.index).dt.tz_localize("UTC")
    if kind not in SHAPES:
        return cells
    return by_distinct(lambda distinct: _parsed(kind, distinct), cells)


def _local_date(kind: str, cells: pd.Series, typed: pd.Series) -> pd.Series:
    """The calendar date of a date, or of a timestamp at the site's own offset (the date
    part of the text as sent), as a naive day."""
    if kind == "date":
        return typed
    return pd.to_datetime(cells.str.slice(0, 10).where(typed.notna()), format="%Y-%m-%d", errors="coerce")


@_timed
def frame_for(spec: contract.FileSpec, numbers, columns: dict[str, pa.Array]) -> Parsed:
    """The frame the suite reads: the CSV's cells (Arrow strings, NA where empty) plus
    the derived columns it reads."""
    index = pd.Index(numbers, name="source_row")
    cells = {c: pd.Series(pd.arrays.ArrowStringArray(columns[c]), index=index) for c in spec.column_names}
    typed = {c.name: _typed(c.kind, cells[c.name], columns[c.name]) for c in spec.columns}
    data = dict(cells)
    for c in spec.columns:
        if c.kind in suites.TYPE_WORDS:
            data[f"{c.name}__parses"] = (cells[c.name].isna() | typed[c.name].notna()).astype(bool)
        if c.min is not None or c.max is not None:
            # plain float64 (NaN where absent): GX compares a numpy column vectorized,
            # a nullable one value by value in Python
            data[f"{c.name}__value"] = typed[c.name].astype("float64")
    for a, b in spec.not_after:
        ka, kb = spec.column(a).kind, spec.column(b).kind
        if "date" in (ka, kb):
            lhs, rhs = _local_date(ka, cells[a], typed[a]), _local_date(kb, cells[b], typed[b])
        else:
            lhs, rhs = typed[a], typed[b]
        both = lhs.notna() & rhs.notna()
        data[f"{a}__not_after_{b}"] = (lhs <= rhs).astype("boolean").where(both)
    if spec.fatal_iff_grade5:
        grade = typed["grade"]
        data["grade__is_5"] = (grade == 5).astype("boolean").where(grade.notna())
        outcome = cells["outcome"]
        data["outcome__is_fatal"] = (outcome == "fatal").astype("boolean").where(outcome.isin(contract.OUTCOMES))
    return Parsed(pd.DataFrame(data, index=index), typed)


@dataclass(frozen=True)
class Group:
    """Columns a rule reads together (one, or the two of a pair rule); `presence`: every
    rule on it only asks that the cell be there, so only that counts."""
    columns: tuple[str, ...]
    presence: bool


def columns_read(kwargs: dict) -> tuple[str, ...]:
    """The column an expectation reads, or the two of a pair expectation."""
    return (kwargs["column"],) if "column" in kwargs else (kwargs["column_A"], kwargs["column_B"])


@lru_cache(maxsize=None)
def column_groups(suite_name: str) -> tuple[Group, ...]:
    """The column groups of a suite's rules, in the order the suite first reads them."""
    expectations = suites.load(suite_name)["expectations"]
    read: dict[tuple[str, ...], set[str]] = {}
    for e in expectations:
        read.setdefault(columns_read(e["kwargs"]), set()).add(e["type"])
    seen = [c for cols in read for c in cols]
    if len(seen) != len(set(seen)):
        raise ValueError(f"suite {suite_name}: a column is read both alone and in a pair")
    return tuple(Group(cols, types == {"expect_column_values_to_not_be_null"})
                 for cols, types in read.items())


def _codes(frame: pd.DataFrame, group: Group) -> np.ndarray:
    """Each row's value of the group, as a code 0, 1, ... in order of first appearance
    (NA is a value of its own), as pd.factorize numbers one column's values; a pair's
    codes are factorized again from the two."""
    if group.presence:
        return _two_codes(frame[group.columns[0]].isna().to_numpy())
    column = frame[group.columns[0]]
    if len(group.columns) == 1 and column.dtype == np.bool_:   # derived true/false, never NA
        return _two_codes(column.to_numpy())
    if len(group.columns) == 1:
        return pd.factorize(column, use_na_sentinel=False)[0]
    codes = np.zeros(len(frame), dtype=np.int64)
    for c in group.columns:
        own, uniques = pd.factorize(frame[c], use_na_sentinel=False)
        codes = codes * (len(uniques) + 1) + own
    return pd.factorize(codes)[0]


def _two_codes(flags: np.ndarray) -> np.ndarray:
    """A true/false column's codes as pd.factorize numbers them (0 for the first row's
    value, 1 for the other), without hashing every row; one byte each."""
    return (flags != flags[0]).view(np.int8) if len(flags) else np.zeros(0, dtype=np.int8)


def _first_rows(codes: np.ndarray) -> np.ndarray:
    """The first row of code 0, 1, ..., for codes numbered in order of first appearance
    (as _codes gives them, checked by _numbered_by_appearance): a row holds a new code
    where the codes' running maximum rises.
    One pass, where np.unique(return_index=True) sorts every row of the wave; for two
    values at most (a true/false, a presence), the first 1 is looked for instead."""
    if not len(codes):
        return np.zeros(0, dtype=np.int64)
    highest = codes.max()
    if codes[0] == 0 and highest <= 1:
        return np.array([0, np.argmax(codes)] if highest == 1 else [0], dtype=np.int64)
    highest = np.maximum.accumulate(codes)
    return np.flatnonzero(np.concatenate(([True], highest[1:] > highest[:-1])))


def _numbered_by_appearance(codes: np.ndarray, first: np.ndarray) -> bool:
    """Whether the codes are 0, 1, ... in order of first appearance, `first` being what
    _first_rows found: none is negative (a -1 would match no value GX judged) and the
    code at the k-th first row is k (then no other code can appear: each first row
    holds a code above all before it)."""
    return not len(codes) or bool(codes.min() >= 0 and np.array_equal(codes[first], np.arange(len(first))))


@dataclass
class Distinct:
    """GX's batch for a frame (`values`: for each column group, one row per distinct
    value, padded to a common length by repeating its own rows) and, per group, each
    frame row's code and the code at each row of `values`."""
    values: pd.DataFrame
    row_codes: dict[str, np.ndarray]     # column -> code of each frame row
    value_codes: dict[str, np.ndarray]   # column -> code of each row of `values`


def _rows_at(column: pd.Series, first: np.ndarray, length: int) -> pd.Series:
    """The column's values at rows `first` (ascending), repeated to `length` values, text
    as GX reads it: Python str, None. Text is taken by Arrow from the chunk that holds each
    row (a wave's frame has a chunk per part): pandas', or Arrow's, take of the whole
    column would first join the chunks, copying it."""
    if not isinstance(column.dtype, pd.StringDtype):
        return column.iloc[np.resize(first, length)].reset_index(drop=True)
    chunks = column.array.__arrow_array__().chunks
    ends = np.cumsum([len(c) for c in chunks])
    cuts = np.searchsorted(first, ends)   # rows of chunk k: first[cuts[k - 1]:cuts[k]]
    texts, lo = [], 0
    for chunk, end, hi in zip(chunks, ends, cuts):
        if hi > lo:
            texts += chunk.take(pa.array(first[lo:hi] - (end - len(chunk)))).to_pylist()
        lo = hi
    values = np.empty(len(texts), dtype=object)
    values[:] = texts
    return pd.Series(np.resize(values, length), dtype=object)


@_timed
def distinct_values(frame: pd.DataFrame, groups: tuple[Group, ...]) -> Distinct:
    """GX's batch for `frame` and the codes that map its rows back (see Distinct)."""
    firsts, codes_of = {}, {}
    for g in groups:
        codes = _codes(frame, g)
        first = _first_rows(codes)
        if not _numbered_by_appearance(codes, first):   # a dtype pandas numbers otherwise
            codes = pd.factorize(codes)[0]
            first = _first_rows(codes)
        codes_of[g] = codes
        firsts[g] = first
    length = max(len(f) for f in firsts.values())
    values, row_codes, value_codes = {}, {}, {}
    for g, first in firsts.items():
        at = np.resize(first, length)   # a repeated value changes no verdict
        for c in g.columns:
            values[c] = _rows_at(frame[c], first, length)
            row_codes[c] = codes_of[g]
            value_codes[c] = codes_of[g][at]
    # index unnamed: GX then lists the unexpected rows by position; a named index makes it
    # look each row up (0.3 s per million rows judged)
    values = pd.DataFrame(values)
    return Distinct(values, row_codes, value_codes)


# home -> identifiers of this process's validation results: not yet rendered (pending), or
# rendered and not yet indexed (rendered)
_pending_docs: dict[str, list] = {}
_rendered_docs: dict[str, list] = {}


def _take(docs: dict[str, list], home: Home) -> list:
    return docs.pop(str(home.root), [])


def _add(docs: dict[str, list], home: Home, identifiers: list) -> None:
    docs.setdefault(str(home.root), []).extend(identifiers)


def wave_committed(home: Home) -> None:
    """A wave of ingest is committed: the Data Docs pages of its validations are rendered
    now, where GX ran them, so a run that stops later keeps them (a re-run skips what was
    committed and would not validate it again)."""
    if GX_ELSEWHERE is not None:
        GX_ELSEWHERE.wave_committed()
    else:
        render_pages(home, _take(_pending_docs, home))


@_timed
def render_pages(home: Home, identifiers: list) -> None:
    """Render the Data Docs pages of these validation results, not the index:
    build_data_docs indexes them."""
    if identifiers:
        with _gx_files_lock(str(home.root)):
            _context(str(home.root)).build_data_docs(site_names=[DOCS_SITE], resource_identifiers=identifiers,
                                                     build_index=False)
        _add(_rendered_docs, home, identifiers)


@_timed
def build_data_docs(home: Home) -> Path | None:
    """Render the pages of this process's pending validation results into <home>/data_docs,
    and the index page, which lists every page there (of every run). GX builds the index
    together with at least one page: where every page is rendered already (render_pages),
    the last one is rendered again. Returns the index's path, or None when nothing was
    validated since the last index build."""
    rendered = _take(_rendered_docs, home)
    identifiers = _take(_pending_docs, home) or rendered[-1:]
    if not identifiers:
        return None
    with _gx_files_lock(str(home.root)):
        _context(str(home.root)).build_data_docs(site_names=[DOCS_SITE], resource_identifiers=identifiers)
    return home.data_docs / "index.html"


@lru_cache(maxsize=None)
def _context(root: str):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for name in ("great_expectations", "great_expectations._docs_decorators"):
        logging.getLogger(name).setLevel(logging.WARNING)
    home = Home(Path(root))
    ctx = gx.get_context(mode="file", project_root_dir=str(home.root))
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    site = {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": str(home.data_docs)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "site_section_builders": {"profiling": "None"},
    }
    sites = ctx.get_site_names() or []
    if DOCS_SITE not in sites:
        ctx.add_data_docs_site(DOCS_SITE, site)
    elif dict(ctx.get_config().data_docs_sites[DOCS_SITE]) != site:
        ctx.update_data_docs_site(DOCS_SITE, site)
    return ctx


@lru_cache(maxsize=None)
def _datasource(root: str):
    """The one pandas datasource of a home's context, (re)created once per process and
    kept: re-creating it later would drop the assets of the checkpoints already made."""
    return _context(root).data_sources.add_or_update_pandas(DATASOURCE)


@contextmanager
def _gx_files_lock(root: str) -> Iterator[None]:
    """GX rewrites its project files (great_expectations.yml, suites, checkpoints) when a
    context, datasource or checkpoint is set up, and the Data Docs index when it renders:
    one process at a time (ingest's workers share the home)."""
    with open(Path(root) / ".gx.lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def prepare(home: Home) -> None:
    """Set up every file's checkpoint now, in this process (ingest's parent process, while
    its workers read their first wave)."""
    for spec in contract.FILES.values():
        _checkpoint_for(str(home.root), spec.file)


@lru_cache(maxsize=16)
def _checkpoint_for(root: str, name: str):
    from .literature import PUBLICATIONS
    spec = {s.file: s for s in (*contract.FILES.values(), PUBLICATIONS)}[name]
    with _gx_files_lock(root):
        return _checkpoint(root, spec)


def _checkpoint(root: str, spec: contract.FileSpec):
    """Datasource, asset, suite, validation definition and checkpoint for one file, set
    from `expectations/` once per process (the committed suite rules)."""
    import great_expectations as gx

    name = suites.suite_name(spec)
    ctx, ds = _context(root), _datasource(root)
    asset = next((a for a in ds.assets if a.name == spec.file), None) or ds.add_dataframe_asset(spec.file)
    batch = next((b for b in asset.batch_definitions if b.name == "distinct_values"), None) \
        or asset.add_batch_definition_whole_dataframe("distinct_values")
    suite = ctx.suites.add_or_update(gx.ExpectationSuite(**suites.load(name)))
    vd = ctx.validation_definitions.add_or_update(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    return ctx.checkpoints.add_or_update(gx.Checkpoint(
        name=f"ingest_{name}", validation_definitions=[vd], actions=[],
        result_format={"result_format": "COMPLETE", "include_unexpected_rows": False}))


@dataclass(frozen=True)
class Failure:
    """A rule GX found broken in a batch of distinct values: the column it read (the
    first of a pair), the positions in the batch of the values that broke it, the rule."""
    column: str
    positions: list[int]
    violation: Violation


@_timed
def run_checkpoint(home: Home, file: str, values: pd.DataFrame, run_name: str) -> tuple[list[Failure], list]:
    """GX's verdict on a batch of distinct values of one file (its checkpoint, whose
    results GX stores for Data Docs): the rules broken, and the results' identifiers
    (render_pages renders them)."""
    from great_expectations.core.run_identifier import RunIdentifier

    checkpoint = _checkpoint_for(str(home.root), file)
    result = checkpoint.run(batch_parameters={"dataframe": values}, run_id=RunIdentifier(run_name=run_name))
    failures = []
    for vr in result.run_results.values():
        for r in vr.results:
            if r.exception_info and r.exception_info.get("raised_exception"):
                raise RuntimeError(f"GX could not evaluate {r.expectation_config.type} on {file}: "
                                   f"{r.exception_info.get('exception_message')}")
            if not r.success:
                meta = r.expectation_config.meta
                failures.append(Failure(columns_read(r.expectation_config.kwargs)[0],
                                        list(r.result.get("unexpected_index_list") or []),
                                        Violation(meta["rule"], meta["explain"])))
    return failures, list(result.run_results)


# Set in an ingest worker: GX runs in the parent process (ingest_workers.GXInParent), which
# renders the Data Docs pages too; None: GX runs in this process.
GX_ELSEWHERE = None


def validate(home: Home, spec: contract.FileSpec, frame: pd.DataFrame, run_name: str) -> dict[int, list[Violation]]:
    """Frame index -> the rules that row broke (rows with none are absent), GX judging
    the distinct values of the frame (see the module's docstring)."""
    if frame.empty:
        return {}
    distinct = distinct_values(frame, column_groups(suites.suite_name(spec)))
    if GX_ELSEWHERE is not None:
        failures = GX_ELSEWHERE.run_checkpoint(spec.file, distinct.values, run_name)
    else:
        failures, identifiers = run_checkpoint(home, spec.file, distinct.values, run_name)
        _add(_pending_docs, home, identifiers)
    broken: dict[int, list[Violation]] = defaultdict(list)
    for failure in failures:   # a group's columns share its codes
        unexpected = np.unique(distinct.value_codes[failure.column][failure.positions])
        rows = np.flatnonzero(np.isin(distinct.row_codes[failure.column], unexpected))
        for label in frame.index[rows]:
            broken[int(label)].append(failure.violation)
    return dict(broken)
