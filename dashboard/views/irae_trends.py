"""Immune-related adverse events by month of onset and category."""
import altair as alt
import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard import data as d
from dashboard import filters

wh = d.warehouse()
flt = filters.current()

st.title("irAE trends")
st.caption(d.DEFINITIONS["irae"] + " " + d.DEFINITIONS["current"])

if not d.require(wh, "irae_monthly"):
    st.stop()

APPLIES = ("site", "tumor", "dates")
if flt.active and filters.can_filter(wh, "infusion_outcomes", "current_iraes",
                                     "current_patients"):
    df = filters.query(wh, filters.irae_monthly_sql(flt))
    filters.banner(flt, APPLIES,
                   "Recomputed with the definitions of marts.irae_monthly: irAEs of patients of "
                   "the site and tumor types, with onset in the date range; treated patients "
                   "from infusions of that site, tumor types and date range. An irAE belongs to "
                   "the patient, not to an infusion, so regimen classes do not apply.")
    if df.empty:
        st.info("No current irAE passes the filters.")
        st.stop()
else:
    df = wh.table("irae_monthly")
    filters.banner(flt, () if flt.active else APPLIES,
                   "This warehouse has no core tables to filter: rebuild it with "
                   "`safety-ledger build`." if flt.active else "")
    if df.empty:
        st.info("`marts.irae_monthly` has no rows: no current irAE or infusion yet.")
        st.stop()

for c in ("events", "grade3plus_events", "patients", "treated_patients"):
    df[c] = pd.to_numeric(df[c], errors="coerce")
df["Month"] = [d.fmt_month(m) for m in df["month"]]
df["Category"] = [d.label_of(c, "(none)") for c in df["category"]]

all_categories = sorted(c for c in df.loc[df["category"].notna(), "Category"].unique())
chosen = st.multiselect("Categories", all_categories, default=all_categories,
                        key="irae_categories")
months = sorted(df["Month"].unique())
ev = df[df["category"].notna() & df["Category"].isin(chosen)]

# Treated patients are a property of the month: the same on every category's row.
treated = df.groupby("Month")["treated_patients"].max().reindex(months)
monthly = pd.DataFrame({
    "Month": months,
    "irAE events": ev.groupby("Month")["events"].sum().reindex(months).fillna(0).astype(int).values,
    "Grade 3+ events": ev.groupby("Month")["grade3plus_events"].sum().reindex(months)
    .fillna(0).astype(int).values,
    "Treated patients": treated.values,
})

n_ev, n_g3 = int(ev["events"].fillna(0).sum()), int(ev["grade3plus_events"].fillna(0).sum())
st.markdown(f"**{d.plural(n_ev, 'irAE event')}** ({n_g3:,} grade 3+) with onset in "
            f"{d.plural(len(months), 'month')} ({months[0]} to {months[-1]}), in "
            f"{len(chosen)} of {d.plural(len(all_categories), 'category', 'categories')}.")

st.subheader("Events by month and category")
if ev.empty:
    st.info("No irAE event in the chosen categories.")
else:
    st.altair_chart(charts.stacked_bars(
        ev, x="Month", x_title="Month of onset", y="events", y_title="irAE events",
        colour="Category", colour_title="Category", order=months,
        colour_scale=charts.category_scale(all_categories),
        tooltip=["Month", "Category", "events", "grade3plus_events", "patients"]),
        key="chart_irae_events")

st.subheader("Grade 3+ events by month")
g3 = ev[ev["grade3plus_events"].fillna(0) > 0]
if g3.empty:
    st.info("No grade 3+ irAE event in the chosen categories.")
else:
    st.altair_chart(charts.stacked_bars(
        g3, x="Month", x_title="Month of onset", y="grade3plus_events",
        y_title="Grade 3+ irAE events", colour="Category", colour_title="Category",
        order=months, colour_scale=charts.category_scale(all_categories), tooltip=["Month", "Category", "grade3plus_events", "patients"]),
        key="chart_irae_g3")

st.subheader("Treated patients by month")
st.caption("Treated patients of a month = distinct patients with an infusion started in that "
           "month: the population the month's events arose in.")
tp = monthly.dropna(subset=["Treated patients"])
if tp.empty:
    st.info("No month has treated patients in the mart.")
else:
    line = (alt.Chart(tp).mark_line(point=True)
            .encode(x=alt.X("Month:N", sort=months, title="Month", axis=alt.Axis(labelAngle=0)),
                    y=alt.Y("Treated patients:Q", title="Treated patients"),
                    tooltip=["Month", "Treated patients", "irAE events", "Grade 3+ events"])
            .properties(height=260))
    st.altair_chart(line, key="chart_irae_treated")

st.subheader("By month")
show = monthly.copy()
for c in ("irAE events", "Grade 3+ events", "Treated patients"):
    show[c] = [d.fmt_int(v) for v in show[c]]
st.dataframe(show, hide_index=True, key="table_irae_monthly")
d.download(show, "irae-by-month", "irae_monthly")

st.subheader("By month and category")
st.caption("Patients = distinct patients with an irAE of that category with onset in that month "
           "(a patient with two categories is in both rows, so rows do not add up to patients).")
detail = ev.sort_values(["Month", "Category"])[
    ["Month", "Category", "events", "grade3plus_events", "patients", "treated_patients"]]
detail = detail.rename(columns={"events": "Events", "grade3plus_events": "Grade 3+ events",
                                "patients": "Patients", "treated_patients": "Treated patients"})
for c in ("Events", "Grade 3+ events", "Patients", "Treated patients"):
    detail[c] = [d.fmt_int(v) for v in detail[c]]
st.dataframe(detail, hide_index=True, key="table_irae_detail")
d.download(detail, "irae-by-month-and-category", "irae_detail")
