"""The GX Expectation Suites, one per contract file, derived from contract.py.

`expectations/<file stem>.json` is this module's output, committed so that the rules
can be read and reviewed as GX suites; `safety-ledger suites --check` (run by the
tests) fails if they drift from the contract. Each expectation's `meta` carries the
machine-readable rule name that a quarantined row reports, and the sentence a site
reads.

Columns the suite reads beside the CSV's own (added by validation.frame_for):
  <col>__parses        the cell has the contract's type (or is empty)
  <col>__value         the parsed number, for range rules
  <a>__not_after_<b>   whether a is not after b (NA when either is absent), compared
                       by frame_for: GX validates distinct values, and the pair of
                       two nearly unique timestamps would be a value per row
  grade__is_5 / outcome__is_fatal   for "fatal if and only if grade 5"
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from . import contract

EXPECTATIONS_DIR = Path(__file__).resolve().parents[1] / "expectations"
TYPE_WORDS = {"int": "a whole number", "float": "a number", "date": "a date YYYY-MM-DD",
              "timestamp": "an ISO 8601 timestamp with an offset, e.g. 2025-03-22T09:40:00+08:00",
              "list": "';'-separated lower-case tokens without spaces"}


def suite_name(spec: contract.FileSpec) -> str:
    return spec.file.removesuffix(".csv")


def _exp(type_: str, rule: str, explain: str, **kwargs) -> dict:
    return {"type": type_, "kwargs": kwargs, "meta": {"rule": rule, "explain": explain}}


def _range_words(c: contract.Column) -> str:
    low = f"greater than {c.min:g}" if c.strict_min else f"at least {c.min:g}"
    return f"{low} and at most {c.max:g}"


def expectations_for(spec: contract.FileSpec) -> list[dict]:
    stem = suite_name(spec)
    out: list[dict] = []
    for c in spec.columns:
        rule = f"{stem}.{c.name}"
        if not c.nullable and c.kind != "list":
            out.append(_exp("expect_column_values_to_not_be_null", f"{rule}.required",
                            f"{c.name} is required", column=c.name))
        if c.kind in TYPE_WORDS:
            out.append(_exp("expect_column_values_to_be_in_set", f"{rule}.type",
                            f"{c.name} must be {TYPE_WORDS[c.kind]}",
                            column=f"{c.name}__parses", value_set=[True]))
        if c.kind in ("enum", "bool"):
            out.append(_exp("expect_column_values_to_be_in_set", f"{rule}.vocabulary",
                            f"{c.name} must be one of {', '.join(c.vocabulary)}",
                            column=c.name, value_set=list(c.vocabulary)))
        if c.kind == "list":
            token = "(?:" + "|".join(re.escape(v) for v in c.vocabulary) + ")"
            out.append(_exp("expect_column_values_to_match_regex", f"{rule}.vocabulary",
                            f"every token of {c.name} must be one of {', '.join(c.vocabulary)}",
                            column=c.name, regex=f"^{token}(?:;{token})*$"))
            if c.min_items:
                out.append(_exp("expect_column_values_to_not_be_null", f"{rule}.min_items",
                                f"{c.name} needs at least {c.min_items} token", column=c.name))
        if c.min is not None or c.max is not None:
            out.append(_exp("expect_column_values_to_be_between", f"{rule}.range",
                            f"{c.name} must be {_range_words(c)}", column=f"{c.name}__value",
                            min_value=c.min, max_value=c.max, strict_min=c.strict_min))
        if c.max_length is not None:
            out.append(_exp("expect_column_value_lengths_to_be_between", f"{rule}.length",
                            f"{c.name} must be 1 to {c.max_length} characters", column=c.name,
                            min_value=1, max_value=c.max_length))
    for a, b in spec.not_after:
        out.append(_exp("expect_column_values_to_be_in_set", f"{stem}.{a}.not_after_{b}",
                        f"{a} must not be after {b}", column=f"{a}__not_after_{b}", value_set=[True]))
    if spec.fatal_iff_grade5:
        out.append(_exp("expect_column_pair_values_to_be_equal", f"{stem}.outcome.fatal_iff_grade5",
                        "outcome is fatal if and only if grade is 5", column_A="grade__is_5",
                        column_B="outcome__is_fatal", ignore_row_if="either_value_is_missing"))
    return out


def suite_json(spec: contract.FileSpec) -> dict:
    return {"name": suite_name(spec), "expectations": expectations_for(spec),
            "meta": {"contract": spec.contract, "file": spec.file,
                     "generated_by": "safety_ledger.suites (do not edit by hand)"}}


def all_suites() -> dict[str, dict]:
    from .literature import PUBLICATIONS
    return {suite_name(s): suite_json(s) for s in (*contract.FILES.values(), PUBLICATIONS)}


def render(suite: dict) -> str:
    return json.dumps(suite, indent=2) + "\n"


def write_all(directory: Path = EXPECTATIONS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, suite in all_suites().items():
        p = directory / f"{name}.json"
        p.write_text(render(suite), encoding="utf-8")
        paths.append(p)
    return paths


def drifted(directory: Path = EXPECTATIONS_DIR) -> list[str]:
    """Names of suites whose committed JSON differs from what the contract gives."""
    return [name for name, suite in all_suites().items()
            if not (directory / f"{name}.json").exists()
            or (directory / f"{name}.json").read_text(encoding="utf-8") != render(suite)]


def load(name: str, directory: Path = EXPECTATIONS_DIR) -> dict:
    return json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))
