"""Reaction rates by cycle, tumor type and regimen class, each with its 95% Wilson interval."""
import pandas as pd
import streamlit as st

from dashboard import charts, filters
from dashboard import data as d
from dashboard import literature_figures as lf

wh = d.warehouse()
flt = filters.current()
# Filtered, the counts are recomputed from core.infusion_outcomes (the infusions the marts
# count) with the same definitions; unfiltered, the marts are read as published.
FILTERED = flt.active and filters.can_filter(wh, "infusion_outcomes")

st.title("Reaction rates")
st.caption(d.DEFINITIONS["current"])
filters.banner(flt, ("site", "tumor", "regimen", "dates") if FILTERED else ())

which = st.radio("Rate drawn", ["Reaction rate", "Grade 3+ rate"], horizontal=True,
                 key="rate_kind")
if which == "Reaction rate":
    cols = ("reaction_infusions", "reaction_rate", "ci_low", "ci_high")
    definition = d.DEFINITIONS["reaction_rate"]
else:
    cols = ("grade3plus_infusions", "grade3plus_rate", "grade3plus_ci_low", "grade3plus_ci_high")
    definition = d.DEFINITIONS["grade3plus_rate"]
st.caption(definition + " Each point is the rate, the bar its 95% interval; each group is "
           "labelled with its numerator/denominator (infusions). Groups with 0 infusions "
           "have no rate (—) and are not drawn.")

# Rates the publications report (marts.literature key findings, dashboard/literature_figures):
# drawn on the chart of the same rate (any grade on "Reaction rate", grade 3+ on "Grade 3+ rate").
LIT_REFS = pd.DataFrame(columns=["value", "label"])
if wh.has("literature"):
    _lit = wh.table("literature")
    lit_rates = [r for p, f in zip(_lit["publication_id"], _lit["key_finding"])
                 if not d.is_null(f) for r in lf.reported_rates(str(p), str(f))
                 if r.kind == "reaction"]
    grade = "any" if which == "Reaction rate" else "3+"
    chosen = [r for r in lit_rates if r.grade == grade]
    LIT_REFS = pd.DataFrame({"value": [r.rate for r in chosen],
                             "label": [r.label for r in chosen]})
    if chosen:
        st.caption(
            "Purple dotted lines: infusion-reaction rates the publications report ("
            + "; ".join(f"{r.label} — “{r.text}”" for r in chosen)
            + "). A publication's rate is usually per patient over the whole study; these "
              "charts are per infusion, so a line is context, not a benchmark.")

REGIMEN_ORDER = ["monotherapy", "chemotherapy", "chemo_bevacizumab", "tki", "chemo_tki", "other"]


def _sorted(df: pd.DataFrame, key: str) -> pd.DataFrame:
    if key == "cycle":
        num = pd.to_numeric(df["cycle"], errors="coerce")
        return df.assign(_o=num).sort_values(["_o", "cycle"], na_position="last").drop(columns="_o")
    if key == "regimen_class":
        rank = {r: i for i, r in enumerate(REGIMEN_ORDER)}
        return (df.assign(_o=[rank.get(str(v), len(rank)) for v in df[key]])
                .sort_values(["_o", key]).drop(columns="_o"))
    return df.sort_values(["infusions", key], ascending=[False, True])


def section(table: str, key: str, title: str, group_title: str, plural: str,
            vertical: bool) -> None:
    st.subheader(title)
    if FILTERED:
        df = filters.query(wh, filters.rates_by_sql(flt, key))
        if df.empty:
            st.info("No current infusion passes the filters.")
            return
    else:
        if not d.require(wh, table):
            return
        df = wh.table(table)
        if df.empty:
            st.info(f"`marts.{table}` has no rows: no current infusions yet.")
            return
    df = d.rate_frame(_sorted(df, key))
    labels = [d.label_of(v) for v in df[key]]
    k, rate, lo, hi = (list(df[c]) for c in cols)
    frame = charts.interval_frame(labels, k, list(df["infusions"]), rate, lo, hi)
    n_total = int(df["infusions"].fillna(0).sum())
    k_total = int(df[cols[0]].fillna(0).sum())
    st.markdown(d.rate_sentence(f"All {plural}: {which.lower()}", k_total, n_total,
                                "infusions"))
    if frame.empty:
        st.info("No group has infusions yet, so there is no rate to draw.")
    else:
        overall, _, _ = d.wilson(k_total, n_total)
        chart = charts.interval_chart(frame, group_title=group_title, rate_title=which,
                                      denominator="infusions", vertical=vertical,
                                      reference=overall)
        chart = charts.with_references(chart, LIT_REFS, vertical=vertical)
        st.altair_chart(chart, key=f"chart_{table}")
        st.caption("Dashed line: the rate over all infusions.")
    shown = d.rate_table(df, key, group_title)
    st.dataframe(shown, hide_index=True, key=f"table_{table}")
    d.download(shown, table.replace("_", "-"), table)


section("reaction_rate_by_cycle", "cycle", "By cycle", "Cycle", "cycles", vertical=True)
section("reaction_rate_by_tumor_type", "tumor_type", "By tumor type", "Tumor type",
        "tumor types", vertical=False)
section("reaction_rate_by_regimen", "regimen_class", "By regimen class", "Regimen class",
        "regimen classes", vertical=False)
st.caption("Regimen class from the infusion's combination: chemotherapy (C), bevacizumab (B), "
           "tyrosine-kinase inhibitor (T). None → monotherapy; C → chemotherapy; C+B → "
           "chemo_bevacizumab; T → tki; C+T → chemo_tki; anything else → other.")
