"""How a figure is written, the same on the dashboard and in the board pack: counts with
thousands separators, percentages, 95% Wilson intervals, times in UTC, and a dash where
there is nothing to show (never 0, never an error)."""
from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import pandas as pd

Z = 1.959964  # marts-v1: every 95% CI is a Wilson score interval with this z
DASH = "—"


def is_null(x: Any) -> bool:
    if x is None or x is pd.NA or x is pd.NaT:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def as_int(x: Any) -> int:
    return 0 if is_null(x) else int(x)


def wilson(k: Any, n: Any) -> tuple[float | None, float | None, float | None]:
    """Rate and 95% Wilson score interval; all None when n is 0 (never 0, never an error)."""
    if is_null(n) or int(n) <= 0:
        return (None, None, None)
    k, n = int(as_int(k)), int(n)
    p = k / n
    z2 = Z * Z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return (p, max(0.0, centre - half), min(1.0, centre + half))


def plural(n: Any, one: str, many: str | None = None) -> str:
    """'1 site', '2 sites', '1,204 infusions'."""
    n = as_int(n)
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def fmt_int(x: Any) -> str:
    return DASH if is_null(x) else f"{int(x):,}"


def _pct_number(x: Any) -> str:
    # A proportion, clamped to [0, 1]: a Wilson bound computed in floating point can come
    # out a hair below 0 or above 1, which must not print as "-0.0%".
    return f"{100 * min(1.0, max(0.0, float(x))):.1f}"


def fmt_pct(x: Any) -> str:
    return DASH if is_null(x) else f"{_pct_number(x)}%"


def fmt_ci(lo: Any, hi: Any) -> str:
    if is_null(lo) or is_null(hi):
        return DASH
    return f"{_pct_number(lo)}–{_pct_number(hi)}%"


def fmt_ratio(x: Any, digits: int = 2) -> str:
    return DASH if is_null(x) else f"{float(x):.{digits}f}"


def fmt_time(x: Any) -> str:
    if is_null(x):
        return DASH
    if isinstance(x, str):
        try:
            x = pd.Timestamp(x)
        except (ValueError, TypeError):
            return x
    if isinstance(x, (pd.Timestamp, datetime)):
        ts = pd.Timestamp(x)
        if ts.tzinfo is not None:
            return ts.tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")
        return ts.strftime("%Y-%m-%d %H:%M")
    if isinstance(x, date):
        return x.isoformat()
    return str(x)


def rate_sentence(label: str, k: Any, n: Any, unit: str,
                  rate: Any = None, lo: Any = None, hi: Any = None) -> str:
    """'Reaction rate 20.0% (95% CI 5.7–51.0%) — 2 of 10 infusions'.

    The rate and interval are the mart's when given, else computed (Wilson) from k and n.
    """
    n_int = as_int(n)
    if n_int <= 0:
        return f"{label} {DASH} (no {unit}, so no rate) — 0 of 0 {unit}"
    if is_null(rate):
        rate, lo, hi = wilson(k, n)
    elif is_null(lo) or is_null(hi):
        _, lo, hi = wilson(k, n)
    if n_int == 1 and unit.endswith("s"):
        unit = unit[:-1]
    return (f"{label} {fmt_pct(rate)} (95% CI {fmt_ci(lo, hi)}) — "
            f"{as_int(k):,} of {n_int:,} {unit}")


def label_of(x: Any, missing: str = "(not recorded)") -> str:
    if is_null(x):
        return missing
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)
