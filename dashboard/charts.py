"""Altair charts shared by the pages: point estimates with 95% Wilson intervals as error bars."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd

from dashboard import data as d

TIER_COLOURS = {"tolerated": "#2e7d32", "breakthrough": "#f9a825", "failed": "#c62828"}


def category_scale(categories: Sequence[str]) -> alt.Scale:
    """One colour per category, the same in every chart of a page."""
    return alt.Scale(domain=list(categories), scheme="tableau20")


def interval_frame(labels: Sequence[str], k: Sequence[Any], n: Sequence[Any],
                   rate: Sequence[Any], lo: Sequence[Any], hi: Sequence[Any],
                   colour: Sequence[Any] | None = None) -> pd.DataFrame:
    """One row per group with a rate; groups whose denominator is 0 (rate null) are left out."""
    rows = []
    for i, label in enumerate(labels):
        if d.is_null(rate[i]) or d.as_int(n[i]) <= 0:
            continue
        rows.append({
            "label": f"{label} ({d.as_int(k[i])}/{d.as_int(n[i])})",
            "group": label,
            "rate": float(rate[i]),
            "lo": float(lo[i]) if not d.is_null(lo[i]) else float(rate[i]),
            "hi": float(hi[i]) if not d.is_null(hi[i]) else float(rate[i]),
            "k": d.as_int(k[i]),
            "n": d.as_int(n[i]),
            "rate_text": d.fmt_pct(rate[i]),
            "ci_text": d.fmt_ci(lo[i], hi[i]),
            "of_text": f"{d.as_int(k[i])}/{d.as_int(n[i])}",
            "colour": "" if colour is None else str(colour[i]),
        })
    return pd.DataFrame(rows, columns=["label", "group", "rate", "lo", "hi", "k", "n",
                                       "rate_text", "ci_text", "of_text", "colour"])


def interval_chart(frame: pd.DataFrame, *, group_title: str, rate_title: str,
                   denominator: str, vertical: bool = False,
                   colour_title: str | None = None,
                   colour_scale: alt.Scale | None = None,
                   reference: float | None = None) -> alt.LayerChart:
    """Point estimate with its 95% CI as an error bar, one per group; each group's axis
    label ends with its numerator/denominator."""
    order = list(frame["label"])
    xmax = max(0.05, float(frame["hi"].max()) if len(frame) else 0.05)
    xmax = min(1.0, xmax * 1.1 + 0.02)
    rate_axis = alt.Axis(format="%", title=rate_title, tickCount=10)
    rate_scale = alt.Scale(domain=[0, xmax], nice=False, padding=8)
    tooltip = [
        alt.Tooltip("group:N", title=group_title),
        alt.Tooltip("rate_text:N", title=rate_title),
        alt.Tooltip("ci_text:N", title="95% CI"),
        alt.Tooltip("k:Q", title="numerator"),
        alt.Tooltip("n:Q", title=denominator),
    ]
    if vertical:
        angle = 0 if len(frame) <= 10 else -45  # many groups: slanted labels
        base = alt.Chart(frame).encode(x=alt.X("label:N", sort=order, title=group_title,
                                               axis=alt.Axis(labelAngle=angle, labelLimit=160)))
        bars = base.mark_errorbar(ticks={"size": 14}).encode(
            y=alt.Y("lo:Q", axis=rate_axis, scale=rate_scale), y2="hi:Q")
        point = base.mark_point(filled=True, size=90).encode(y="rate:Q", tooltip=tooltip)
        height = 300
    else:
        base = alt.Chart(frame).encode(y=alt.Y("label:N", sort=order, title=group_title,
                                               axis=alt.Axis(labelLimit=260)))
        bars = base.mark_errorbar(ticks={"size": 14}).encode(
            x=alt.X("lo:Q", axis=rate_axis, scale=rate_scale), x2="hi:Q")
        point = base.mark_point(filled=True, size=90).encode(x="rate:Q", tooltip=tooltip)
        height = alt.Step(36)
    if colour_title is not None:
        colour = alt.Color("colour:N", title=colour_title,
                           scale=colour_scale or alt.Undefined)
        point = point.encode(color=colour)
        bars = bars.encode(color=colour)
    layers = [bars, point]
    if reference is not None:
        ref = alt.Chart(pd.DataFrame({"ref": [reference]}))
        if vertical:
            layers.insert(0, ref.mark_rule(strokeDash=[4, 4], color="#999").encode(y="ref:Q"))
        else:
            layers.insert(0, ref.mark_rule(strokeDash=[4, 4], color="#999").encode(x="ref:Q"))
    return alt.layer(*layers).properties(height=height)


def stacked_bars(frame: pd.DataFrame, *, x: str, x_title: str, y: str, y_title: str,
                 colour: str, colour_title: str, horizontal: bool = False,
                 colour_scale: alt.Scale | None = None, order: list[str] | None = None,
                 tooltip: list[Any] | None = None) -> alt.Chart:
    colour_enc = alt.Color(f"{colour}:N", title=colour_title, scale=colour_scale or alt.Undefined)
    if horizontal:
        enc = {"y": alt.Y(f"{x}:N", title=x_title, sort=order, axis=alt.Axis(labelLimit=320)),
               "x": alt.X(f"sum({y}):Q", title=y_title, axis=alt.Axis(tickMinStep=1))}
        height = alt.Step(36)
    else:
        enc = {"x": alt.X(f"{x}:N", title=x_title, sort=order, axis=alt.Axis(labelAngle=0)),
               "y": alt.Y(f"sum({y}):Q", title=y_title, axis=alt.Axis(tickMinStep=1))}
        height = 300
    return (alt.Chart(frame).mark_bar()
            .encode(color=colour_enc, tooltip=tooltip or alt.Undefined, **enc)
            .properties(height=height))


# ---------------------------------------------------------------------------- funnel plot

FUNNEL_LOW_Q, FUNNEL_HIGH_Q = 0.001, 0.999  # marts-v1: exact binomial 99.8% limits


def funnel_curve(p0: float, e_min: float, e_max: float, points: int = 240) -> pd.DataFrame:
    """The 99.8% funnel in observed/expected units around a program rate p0.

    A site with n infusions at the program's rate expects E = n·p0 infusions with a
    reaction; its exact limits are the 0.001 and 0.999 quantiles of Binomial(n, p0)
    (smallest k with P(X ≤ k) ≥ q, scipy's binom.ppf: the rule of
    marts.reaction_rate_by_site), drawn as k/E.  One row per integer n (a geometric grid
    of at most `points` of them) whose E lies in [e_min, e_max]: expected, n, low, high
    (counts), low_ratio, high_ratio.  Empty when p0 is not in (0, 1) or the range is empty.
    """
    import numpy as np
    from scipy.stats import binom

    cols = ["expected", "n", "low", "high", "low_ratio", "high_ratio"]
    if d.is_null(p0) or not 0.0 < float(p0) < 1.0 or e_max <= 0:
        return pd.DataFrame(columns=cols)
    p0 = float(p0)
    n_min = max(1, int(np.floor(max(e_min, 0.0) / p0)))
    n_max = max(n_min, int(np.ceil(e_max / p0)))
    if n_max - n_min + 1 <= points:
        n = np.arange(n_min, n_max + 1)
    else:
        n = np.unique(np.round(np.geomspace(n_min, n_max, points)).astype(int))
    low = binom.ppf(FUNNEL_LOW_Q, n, p0).astype(int)
    high = binom.ppf(FUNNEL_HIGH_Q, n, p0).astype(int)
    expected = n * p0
    return pd.DataFrame({"expected": expected, "n": n, "low": low, "high": high,
                         "low_ratio": low / expected, "high_ratio": high / expected},
                        columns=cols)


def funnel_chart(sites: pd.DataFrame, curve: pd.DataFrame, *,
                 colour_scale: alt.Scale | None = None) -> alt.LayerChart:
    """Funnel plot: each site's observed/expected (y) against its expected count (x).

    `sites` has site, expected, observed, ratio, low_ratio, high_ratio (the site's own
    exact limits from the mart, divided by its expected count), funnel (flag) and
    outside (bool); `curve` is funnel_curve().  Layers: the limit curves (dashed), the
    line O/E = 1, each site's own limits as a vertical bar, the sites as dots, and the
    names of the sites outside their limits."""
    top = [1.5, *(float(v) for v in sites["ratio"].dropna()),
           *(float(v) for v in sites["high_ratio"].dropna())]
    ymax = max(top) * 1.1
    x = alt.X("expected:Q", title="Expected infusions with a reaction (indirect standardization)",
              scale=alt.Scale(zero=True, nice=True))
    y_scale = alt.Scale(domain=[0, ymax], nice=False)
    y_axis = alt.Axis(title="Observed / expected")
    lim = curve.melt(id_vars=["expected", "n"], value_vars=["low_ratio", "high_ratio"],
                     var_name="limit", value_name="ratio")
    lim["limit"] = lim["limit"].map({"low_ratio": "lower 99.8% limit",
                                     "high_ratio": "upper 99.8% limit"})
    curves = (alt.Chart(lim).mark_line(strokeDash=[5, 3], color="#666", clip=True)
              .encode(x=x, y=alt.Y("ratio:Q", scale=y_scale, axis=y_axis),
                      detail="limit:N",
                      tooltip=[alt.Tooltip("limit:N", title="curve"),
                               alt.Tooltip("expected:Q", format=".2f"),
                               alt.Tooltip("n:Q", title="infusions"),
                               alt.Tooltip("ratio:Q", format=".2f", title="O/E")]))
    one = alt.Chart(pd.DataFrame({"ratio": [1.0]})).mark_rule(color="#333").encode(
        y=alt.Y("ratio:Q", scale=y_scale))
    base = alt.Chart(sites)
    own = base.mark_rule(color="#bbb", strokeWidth=3, clip=True).encode(
        x="expected:Q", y=alt.Y("low_ratio:Q", scale=y_scale), y2="high_ratio:Q")
    tooltip = [alt.Tooltip("site:N", title="Site"),
               alt.Tooltip("observed:Q", title="observed"),
               alt.Tooltip("expected:Q", format=".2f", title="expected"),
               alt.Tooltip("ratio:Q", format=".2f", title="O/E"),
               alt.Tooltip("limits:N", title="99.8% limits (infusions)"),
               alt.Tooltip("funnel:N", title="funnel")]
    dots = base.mark_point(filled=True, size=90, clip=True).encode(
        x="expected:Q", y=alt.Y("ratio:Q", scale=y_scale),
        color=alt.Color("funnel:N", title="Funnel (99.8%)", scale=colour_scale or alt.Undefined),
        tooltip=tooltip)
    names = (alt.Chart(sites[sites["outside"]]).mark_text(align="left", dx=8, dy=-8,
                                                          fontWeight="bold", clip=True)
             .encode(x="expected:Q", y=alt.Y("ratio:Q", scale=y_scale), text="site:N"))
    return alt.layer(curves, one, own, dots, names).properties(height=380)


# ---------------------------------------------------------------------------- literature


def with_references(chart: alt.LayerChart, refs: pd.DataFrame, *,
                    vertical: bool = False) -> alt.LayerChart:
    """`chart` (an interval_chart) with one labelled dashed line per row of `refs`
    (columns value: a proportion, label: the text drawn beside it), e.g. a rate a
    publication reports.  Lines beyond the chart's rate axis are clipped (the page lists
    them all)."""
    if refs is None or refs.empty:
        return chart
    enc = "y" if vertical else "x"
    rules = alt.Chart(refs).mark_rule(strokeDash=[2, 2], color="#7b1fa2", strokeWidth=1.5,
                                      clip=True).encode(
        **{enc: alt.X("value:Q") if not vertical else alt.Y("value:Q")},
        tooltip=[alt.Tooltip("label:N", title="publication")])
    if vertical:
        text = alt.Chart(refs).mark_text(align="right", dy=-6, color="#7b1fa2", clip=True,
                                         x="width").encode(y="value:Q", text="label:N")
    else:
        text = alt.Chart(refs).mark_text(align="left", baseline="top", dx=4, y=2, angle=0,
                                         color="#7b1fa2", clip=True).encode(
            x="value:Q", text="label:N")
    return alt.layer(chart, rules, text)
