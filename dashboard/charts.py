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
