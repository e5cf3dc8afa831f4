"""Runs the GX suites of `expectations/` over the rows of one file and says, for each
row, which rules it broke. Validation results and Data Docs are kept under the home:
`<home>/gx/` (the GX project) and `<home>/data_docs/index.html`.

The frame GX sees has patient_ref already pseudonymized: GX stores unexpected values
in its results and Data Docs, so the raw reference must never reach it.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import pandas as pd  # noqa: E402

from . import contract, suites, values  # noqa: E402
from .csv_reader import Row  # noqa: E402
from .home import Home  # noqa: E402

DATASOURCE = "submission_rows"
DOCS_SITE = "safety_ledger_docs"


@dataclass(frozen=True)
class Violation:
    rule: str
    explain: str


def _parses(kind: str, text: str | None) -> bool:
    try:
        values.parse(kind, text)
        return True
    except values.Invalid:
        return False


def _value(kind: str, text: str | None):
    try:
        return values.parse(kind, text)
    except values.Invalid:
        return None


def _comparable(kind: str, text: str | None, as_date: bool):
    """A side of a "not after" rule: a date, or a timestamp as its UTC instant, or, when
    compared with a date, the calendar date at the site's own offset."""
    v = _value(kind, text)
    if v is None:
        return None
    if kind == "timestamp":
        return pd.Timestamp(v.date()) if as_date else pd.Timestamp(values.to_utc(v)).tz_localize(None)
    return pd.Timestamp(v)


def frame_for(spec: contract.FileSpec, rows: list[Row]) -> pd.DataFrame:
    """The CSV's cells as strings plus the derived columns the suite reads."""
    index = [r.number for r in rows]
    data: dict[str, list] = {c: [r.cells.get(c) for r in rows] for c in spec.column_names}
    for c in spec.columns:
        col = data[c.name]
        if c.kind in suites.TYPE_WORDS:
            data[f"{c.name}__parses"] = [_parses(c.kind, t) for t in col]
        if c.min is not None or c.max is not None:
            data[f"{c.name}__value"] = pd.array([_value(c.kind, t) for t in col], dtype="Float64")
    for a, b in spec.not_after:
        ka, kb = spec.column(a).kind, spec.column(b).kind
        as_date = "date" in (ka, kb)
        data[f"{a}__lhs"] = pd.Series([_comparable(ka, t, as_date) for t in data[a]], dtype="datetime64[us]")
        data[f"{a}__rhs"] = pd.Series([_comparable(kb, t, as_date) for t in data[b]], dtype="datetime64[us]")
    if spec.fatal_iff_grade5:
        grades = [_value("int", t) for t in data["grade"]]
        data["grade__is_5"] = pd.array([None if g is None else g == 5 for g in grades], dtype="boolean")
        data["outcome__is_fatal"] = pd.array(
            [None if o not in contract.OUTCOMES else o == "fatal" for o in data["outcome"]], dtype="boolean")
    frame = pd.DataFrame({k: (v.to_numpy() if isinstance(v, pd.Series) else v) for k, v in data.items()},
                         index=index)
    for c in spec.column_names:
        frame[c] = frame[c].astype("object")
    return frame


_pending_docs: dict[str, list] = {}  # home -> validation results not yet rendered


def build_data_docs(home: Home) -> Path | None:
    """Render the validation results of this run into <home>/data_docs (once per run)."""
    pending = _pending_docs.pop(str(home.root), [])
    if not pending:
        return None
    _context(str(home.root)).build_data_docs(site_names=[DOCS_SITE], resource_identifiers=pending)
    return home.data_docs / "index.html"


@lru_cache(maxsize=4)
def _context(root: str):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for name in ("great_expectations", "great_expectations._docs_decorators"):
        logging.getLogger(name).setLevel(logging.WARNING)
    home = Home(Path(root))
    ctx = gx.get_context(mode="file", project_root_dir=str(home.root))
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    if DOCS_SITE not in (ctx.get_site_names() or []):
        ctx.add_data_docs_site(DOCS_SITE, {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(home.data_docs)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}})
    return ctx


def _checkpoint(ctx, spec: contract.FileSpec):
    """Datasource, asset, suite, validation definition and checkpoint for one file,
    refreshed from `expectations/` on every run so that the committed suite rules."""
    import great_expectations as gx

    name = suites.suite_name(spec)
    ds = ctx.data_sources.add_or_update_pandas(DATASOURCE)
    asset = next((a for a in ds.assets if a.name == spec.file), None) or ds.add_dataframe_asset(spec.file)
    batch = next((b for b in asset.batch_definitions if b.name == "rows"), None) \
        or asset.add_batch_definition_whole_dataframe("rows")
    suite = ctx.suites.add_or_update(gx.ExpectationSuite(**suites.load(name)))
    vd = ctx.validation_definitions.add_or_update(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    return ctx.checkpoints.add_or_update(gx.Checkpoint(
        name=f"ingest_{name}", validation_definitions=[vd], actions=[],
        result_format={"result_format": "COMPLETE", "include_unexpected_rows": False}))


def validate(home: Home, spec: contract.FileSpec, rows: list[Row], run_name: str) -> dict[int, list[Violation]]:
    """Row number -> the rules that row broke (rows with none are absent)."""
    if not rows:
        return {}
    from great_expectations.core.run_identifier import RunIdentifier

    ctx = _context(str(home.root))
    frame = frame_for(spec, rows)
    result = _checkpoint(ctx, spec).run(batch_parameters={"dataframe": frame},
                                        run_id=RunIdentifier(run_name=run_name))
    _pending_docs.setdefault(str(home.root), []).extend(result.run_results)
    broken: dict[int, list[Violation]] = {}
    for vr in result.run_results.values():
        for r in vr.results:
            if r.exception_info and r.exception_info.get("raised_exception"):
                raise RuntimeError(f"GX could not evaluate {r.expectation_config.type} on {spec.file}: "
                                   f"{r.exception_info.get('exception_message')}")
            if r.success:
                continue
            meta = r.expectation_config.meta
            for idx in r.result.get("unexpected_index_list") or []:
                number = idx if isinstance(idx, int) else int(next(iter(idx.values())))
                broken.setdefault(number, []).append(Violation(meta["rule"], meta["explain"]))
    return broken
