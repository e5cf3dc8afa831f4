"""Onset and severity: minutes from infusion start to reaction onset, days from first dose
to each irAE category (Kaplan-Meier cumulative incidence), and grade distributions."""
import altair as alt
import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard import data as d

wh = d.warehouse()

st.title("Onset and severity")
st.caption(d.DEFINITIONS["current"])

GRADES = ["1", "2", "3", "4", "5"]
GRADE_SCALE = alt.Scale(domain=GRADES, range=["#9ecae1", "#4292c6", "#fd8d3c", "#d94801",
                                              "#67000d"])


def _grade_label(g) -> str:
    return "all grades" if d.is_null(g) else str(int(g))


def _num(x, digits: int = 2) -> str:
    """A minute or day figure: integers as such, quantiles with up to two decimals (8.75)."""
    if d.is_null(x):
        return d.DASH
    x = float(x)
    return f"{x:,.0f}" if x.is_integer() else f"{x:,.{digits}f}".rstrip("0").rstrip(".")


# ------------------------------------------------------------------ reaction onset
st.subheader("Reaction onset: minutes from the start of the infusion")
st.caption("Onset = `onset_min` of each current reaction (minutes after the infusion "
           "started), by CTCAE term and grade. Quartiles by linear interpolation between "
           "the ordered values (Hyndman & Fan type 7). Within 30 min = reactions with onset "
           "≤ 30 minutes / reactions of the group, 95% Wilson score interval.")
if d.require(wh, "reaction_onset"):
    ons = wh.table("reaction_onset")
    if ons.empty:
        st.info("`marts.reaction_onset` has no rows: no current reaction yet.")
    else:
        ons["Term"] = [d.label_of(t) for t in ons["term"]]
        ons["Grade"] = [_grade_label(g) for g in ons["grade"]]
        allrow = ons[(ons["term"] == "all") & ons["grade"].isna()]
        if len(allrow):
            a = allrow.iloc[0]
            st.markdown(
                f"**{d.plural(a['reactions'], 'current reaction')}** in "
                f"{d.plural(a['patients'], 'patient')}: median onset "
                f"{_num(a['median_onset_min'])} min (quartiles {_num(a['q1_onset_min'])}–"
                f"{_num(a['q3_onset_min'])}, range {_num(a['min_onset_min'])}–"
                f"{_num(a['max_onset_min'])}). "
                + d.rate_sentence("Onset within 30 minutes", a["within_30_min"],
                                  a["reactions"], "reactions") + ".")
        by = ons[(ons["term"] != "all") & ons["grade"].notna()].copy()
        if not by.empty:
            by["group"] = [f"{t} · grade {g} (n={int(n)})"
                           for t, g, n in zip(by["Term"], by["Grade"], by["reactions"])]
            order = list(by["group"])
            base = alt.Chart(by).encode(y=alt.Y("group:N", sort=order, title="Term · grade",
                                                axis=alt.Axis(labelLimit=320)))
            tooltip = [alt.Tooltip("Term:N"), alt.Tooltip("Grade:N"),
                       alt.Tooltip("reactions:Q", title="reactions (n)"),
                       alt.Tooltip("min_onset_min:Q", title="min"),
                       alt.Tooltip("q1_onset_min:Q", title="25th percentile"),
                       alt.Tooltip("median_onset_min:Q", title="median"),
                       alt.Tooltip("q3_onset_min:Q", title="75th percentile"),
                       alt.Tooltip("max_onset_min:Q", title="max")]
            x = alt.X("min_onset_min:Q", title="Minutes from the start of the infusion",
                      scale=alt.Scale(type="symlog", nice=False),
                      axis=alt.Axis(values=[0, 5, 10, 15, 30, 60, 120, 240, 480, 1440]))
            whisker = base.mark_rule(color="#888").encode(x=x, x2="max_onset_min:Q")
            box = base.mark_bar(size=14, opacity=0.85).encode(
                x="q1_onset_min:Q", x2="q3_onset_min:Q",
                color=alt.Color("Grade:N", title="Grade", scale=GRADE_SCALE), tooltip=tooltip)
            median = base.mark_tick(color="black", thickness=2, size=18).encode(
                x="median_onset_min:Q", tooltip=tooltip)
            st.altair_chart(alt.layer(whisker, box, median).properties(height=alt.Step(30)),
                            key="chart_reaction_onset")
            st.caption("Line: range (min–max); bar: 25th–75th percentile; black tick: median. "
                       "Symmetric-log axis, so minutes near 0 and hours both show.")
        wilson = [d.wilson(k, n) for k, n in zip(ons["within_30_min"], ons["reactions"])]
        table = pd.DataFrame({
            "Term": ons["Term"], "Grade": ons["Grade"],
            "Reactions": [d.fmt_int(v) for v in ons["reactions"]],
            "Patients": [d.fmt_int(v) for v in ons["patients"]],
            "Median (min)": [_num(v) for v in ons["median_onset_min"]],
            "Quartiles (min)": [f"{_num(a)}–{_num(b)}" for a, b in
                                zip(ons["q1_onset_min"], ons["q3_onset_min"])],
            "Range (min)": [f"{_num(a)}–{_num(b)}" for a, b in
                            zip(ons["min_onset_min"], ons["max_onset_min"])],
            "Within 30 min": [f"{d.as_int(k):,} of {d.as_int(n):,}"
                              for k, n in zip(ons["within_30_min"], ons["reactions"])],
            "Within 30 min, rate": [d.fmt_pct(w[0]) for w in wilson],
            "95% CI": [d.fmt_ci(w[1], w[2]) for w in wilson],
        })
        st.dataframe(table, hide_index=True, key="table_reaction_onset")
        d.download(table, "reaction-onset", "reaction_onset")
        st.caption("Term `all` = every term; grade `all grades` = every grade.")

# ------------------------------------------------------------------ irAE cumulative incidence
st.subheader("irAEs: cumulative incidence from the first dose")
st.caption(
    "Cumulative incidence of a category by day t = 1 − S(t), S the Kaplan–Meier estimate of "
    "staying free of a first irAE of that category (Kaplan EL, Meier P. J Am Stat Assoc "
    "1958;53:457–481), with a 95% interval 1 − S(t) ± 1.959964 × SE, SE by Greenwood's "
    "formula (Greenwood M. The natural duration of cancer. Reports on Public Health and "
    "Medical Subjects 33, HMSO 1926), clipped to 0–100%. Day 0 = the patient's first dose. "
    "Patients: current patients with at least one current infusion. Follow-up ends "
    "(censoring) at the date of the patient's last current infusion; a first irAE on or "
    "before that date is an event, one after it is not counted (the patient is censored at "
    "the last infusion). Patients with no current infusion are not in the curve.")
if d.require(wh, "irae_cumulative_incidence", "irae_incidence_by_category"):
    summary = wh.table("irae_incidence_by_category")
    ci = wh.table("irae_cumulative_incidence")
    if summary.empty:
        st.info("`marts.irae_incidence_by_category` has no rows: no current irAE yet.")
    else:
        summary = summary.sort_values(["events", "category"], ascending=[False, True])
        cats = [str(c) for c in summary["category"]]
        cohort = d.as_int(summary["cohort_patients"].max())
        n_ev = int(summary["events"].fillna(0).sum())
        n_after = int(summary["events_after_last_infusion"].fillna(0).sum())
        n_untreated = int(summary["patients_without_infusion"].fillna(0).sum())
        st.markdown(
            f"**{d.plural(cohort, 'patient')}** followed from the first dose to the last "
            f"infusion; {d.plural(n_ev, 'first irAE')} counted over "
            f"{d.plural(len(cats), 'category', 'categories')}. Not counted: "
            f"{d.plural(n_after, 'first irAE')} with onset after the patient's last infusion"
            + (f", and irAEs of {d.plural(n_untreated, 'patient')} with no current infusion"
               if n_untreated else "") + ".")
        if n_after:
            st.caption("Censoring at the last infusion leaves out irAEs that start after "
                       "treatment stopped — among them those that made it stop — so the "
                       "curves are lower bounds of the incidence after stopping.")
        default = [c for c in cats if c in set(cats[:5])]
        chosen = st.multiselect("Categories", cats, default=default, key="onset_categories")
        cur = ci[ci["category"].astype(str).isin(chosen)].copy()
        if cur.empty:
            st.info("No category chosen.")
        else:
            # every curve starts at 0 on day 0 (the first dose), before any event or censoring
            starts = pd.DataFrame({"category": chosen, "day": 0, "cumulative_incidence": 0.0,
                                   "ci_low": 0.0, "ci_high": 0.0, "at_risk": pd.NA,
                                   "events": 0, "censored": 0})
            first_days = cur.groupby("category")["day"].min()
            starts = starts[[first_days.get(c, 0) > 0 for c in starts["category"]]]
            cur = pd.concat([starts, cur[starts.columns]], ignore_index=True)
            cur = cur.sort_values(["category", "day"])
            cur["ci_text"] = [d.fmt_ci(a, b) for a, b in zip(cur["ci_low"], cur["ci_high"])]
            cur["ci_pct"] = [d.fmt_pct(v) for v in cur["cumulative_incidence"]]
            colour = alt.Color("category:N", title="Category",
                               scale=charts.category_scale(cats))
            x = alt.X("day:Q", title="Days from the first dose")
            band = alt.Chart(cur).mark_area(interpolate="step-after", opacity=0.15).encode(
                x=x, y=alt.Y("ci_low:Q", axis=alt.Axis(format="%"),
                             title="Cumulative incidence (1 − Kaplan–Meier)"),
                y2="ci_high:Q", color=colour)
            line = alt.Chart(cur).mark_line(interpolate="step-after").encode(
                x=x, y="cumulative_incidence:Q", color=colour,
                tooltip=[alt.Tooltip("category:N"), alt.Tooltip("day:Q"),
                         alt.Tooltip("ci_pct:N", title="cumulative incidence"),
                         alt.Tooltip("ci_text:N", title="95% CI"),
                         alt.Tooltip("at_risk:Q", title="at risk"),
                         alt.Tooltip("events:Q"), alt.Tooltip("censored:Q")])
            st.altair_chart(alt.layer(band, line).properties(height=360),
                            key="chart_irae_incidence")
            st.caption("Line: cumulative incidence, a step at each first irAE; shaded: its 95% "
                       "Greenwood interval. Hover for the patients still at risk.")
        table = pd.DataFrame({
            "Category": cats,
            "Patients followed": [d.fmt_int(v) for v in summary["cohort_patients"]],
            "irAEs counted": [d.fmt_int(v) for v in summary["events"]],
            "Cumulative incidence": [d.fmt_pct(v) for v in summary["cumulative_incidence"]],
            "95% CI": [d.fmt_ci(a, b) for a, b in zip(summary["ci_low"], summary["ci_high"])],
            "By day": [d.fmt_int(v) for v in summary["max_day"]],
            "Median onset (day)": [_num(v) for v in summary["median_onset_day"]],
            "After last infusion (not counted)": [d.fmt_int(v) for v in
                                                  summary["events_after_last_infusion"]],
            "Patients without infusion (not counted)": [d.fmt_int(v) for v in
                                                        summary["patients_without_infusion"]],
        })
        st.dataframe(table, hide_index=True, key="table_irae_incidence")
        d.download(table, "irae-incidence", "irae_incidence")
        st.caption("Cumulative incidence at the last day of follow-up of any patient (“By "
                   "day”); denominator: the patients followed, of whom those censored earlier "
                   "count until their last infusion. Median onset: among the irAEs counted.")

# ------------------------------------------------------------------ grade distribution
st.subheader("Grade distribution")
st.caption("Share of a grade = current events of that grade / current events of that term or "
           "category (CTCAE grade 1–5), 95% Wilson score interval. Reactions by CTCAE term; "
           "irAEs by category, every current irAE (also those after the last infusion).")
if d.require(wh, "grade_distribution"):
    gd = wh.table("grade_distribution")
    if gd.empty:
        st.info("`marts.grade_distribution` has no rows: no current reaction or irAE yet.")
    else:
        gd["Grade"] = [str(int(g)) for g in gd["grade"]]
        gd["Kind"] = [d.label_of(k) for k in gd["kind"]]
        for event_type, title, kind_title, unit in (
                ("reaction", "Reactions by CTCAE term", "Term", "reactions"),
                ("irae", "irAEs by category", "Category", "irAEs")):
            part = gd[gd["event_type"] == event_type].copy()
            st.markdown(f"**{title}**")
            if part.empty:
                st.info(f"No current {unit} yet.")
                continue
            tot = part[part["kind"] == "all"]
            if len(tot):
                g3 = int(tot.loc[tot["grade"] >= 3, "events"].sum())
                n = int(tot["kind_events"].iloc[0])
                st.markdown(d.rate_sentence(f"Grade 3+ share of {unit}", g3, n, unit))
            kinds = (part[part["kind"] != "all"].groupby("Kind")["kind_events"].max()
                     .sort_values(ascending=False))
            order = ["all", *kinds.index]
            part["label"] = [f"{k} (n={int(n)})" for k, n in zip(part["Kind"],
                                                                  part["kind_events"])]
            labels = [part.loc[part["Kind"] == k, "label"].iloc[0] for k in order
                      if (part["Kind"] == k).any()]
            part["share_text"] = [d.fmt_pct(v) for v in part["share"]]
            part["ci_text"] = [d.fmt_ci(a, b) for a, b in zip(part["ci_low"], part["ci_high"])]
            chart = (alt.Chart(part[part["events"] > 0]).mark_bar()
                     .encode(y=alt.Y("label:N", sort=labels, title=kind_title,
                                     axis=alt.Axis(labelLimit=320)),
                             x=alt.X("share:Q", stack="zero", title=f"Share of {unit}",
                                     axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
                             color=alt.Color("Grade:N", scale=GRADE_SCALE, title="Grade"),
                             order=alt.Order("grade:Q"),
                             tooltip=[alt.Tooltip("Kind:N", title=kind_title),
                                      alt.Tooltip("Grade:N"),
                                      alt.Tooltip("events:Q", title=unit),
                                      alt.Tooltip("kind_events:Q", title="denominator"),
                                      alt.Tooltip("share_text:N", title="share"),
                                      alt.Tooltip("ci_text:N", title="95% CI")])
                     .properties(height=alt.Step(28)))
            st.altair_chart(chart, key=f"chart_grades_{event_type}")
            wide = pd.DataFrame({kind_title: order})
            for g in GRADES:
                cell = {}
                for r in part[part["Grade"] == g].itertuples():
                    cell[r.Kind] = (f"{d.as_int(r.events):,} of {d.as_int(r.kind_events):,} · "
                                    f"{d.fmt_pct(r.share)} ({d.fmt_ci(r.ci_low, r.ci_high)})")
                wide[f"Grade {g}"] = [cell.get(k, d.DASH) for k in order]
            st.dataframe(wide, hide_index=True, key=f"table_grades_{event_type}")
            d.download(wide, f"grades-{event_type}", f"grades_{event_type}")
        st.caption("Each cell: events of that grade of events of the row, share, 95% Wilson "
                   "interval. Row `all` pools every term / category.")
