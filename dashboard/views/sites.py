"""Sites and submissions: per-site reaction rate against expectation, the submission
ledger, and the data issues that keep records out of the figures."""
import altair as alt
import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard import data as d

wh = d.warehouse()

st.title("Sites and submissions")
st.caption(d.DEFINITIONS["current"])

# ------------------------------------------------------------------ per-site rates
st.subheader("Reaction rate by site")
st.caption(d.DEFINITIONS["reaction_rate"] + " " + d.DEFINITIONS["observed_expected"])
if d.require(wh, "reaction_rate_by_site"):
    sites = d.rate_frame(wh.table("reaction_rate_by_site").sort_values("site_id"))
    if sites.empty:
        st.info("`marts.reaction_rate_by_site` has no rows: no current infusions yet.")
    else:
        outside = (sites["outside_funnel"] if "outside_funnel" in sites.columns
                   else pd.Series([None] * len(sites), index=sites.index))
        flag = ["outside funnel" if (not d.is_null(o) and bool(o)) else
                ("within funnel" if not d.is_null(o) else "not assessed") for o in outside]
        n_total = int(sites["infusions"].fillna(0).sum())
        k_total = int(sites["reaction_infusions"].fillna(0).sum())
        pooled, _, _ = d.wilson(k_total, n_total)
        st.markdown(d.rate_sentence("All sites: reaction rate", k_total, n_total, "infusions")
                    + f"; {flag.count('outside funnel')} of {d.plural(len(sites), 'site')} "
                      "outside the 99.8% funnel.")
        labels = [d.label_of(s) for s in sites["site_id"]]
        frame = charts.interval_frame(labels, list(sites["reaction_infusions"]),
                                      list(sites["infusions"]), list(sites["reaction_rate"]),
                                      list(sites["ci_low"]), list(sites["ci_high"]), colour=flag)
        scale = alt.Scale(domain=["within funnel", "outside funnel", "not assessed"],
                          range=["#1f77b4", "#c62828", "#999999"])
        if not frame.empty:
            st.altair_chart(charts.interval_chart(
                frame, group_title="Site", rate_title="Reaction rate", denominator="infusions",
                colour_title="Funnel (99.8%)", colour_scale=scale, reference=pooled),
                key="chart_site_rates")
            st.caption("Dashed line: the pooled rate of all sites. Colour: whether the site's "
                       "count lies outside its 99.8% funnel (case-mix adjusted), not whether "
                       "its interval crosses the line.")

        # Observed against the funnel around the expected count.
        has_funnel = {"funnel_low", "funnel_high", "expected_reaction_infusions"} <= set(sites)
        if has_funnel:
            lo = pd.to_numeric(sites["funnel_low"], errors="coerce")
            hi = pd.to_numeric(sites["funnel_high"], errors="coerce")
            exp = pd.to_numeric(sites["expected_reaction_infusions"], errors="coerce")
            # The limits are counts of infusions with a reaction; should a build give
            # them as proportions instead, scale them by the site's infusions.
            if hi.notna().any() and hi.max() <= 1.0 and exp.max() > 1.0:
                lo, hi = lo * sites["infusions"], hi * sites["infusions"]
            fun = pd.DataFrame({"Site": labels, "low": lo.values, "high": hi.values,
                                "expected": exp.values,
                                "observed": sites["reaction_infusions"].values,
                                "funnel": flag}).dropna(subset=["expected"])
            if not fun.empty:
                st.markdown("**Observed infusions with a reaction against the 99.8% limits "
                            "around the expected count**")
                top = max([1.0, *(float(v) for v in pd.concat(
                    [fun["low"], fun["high"], fun["expected"], fun["observed"]]).dropna())])
                base = alt.Chart(fun).encode(y=alt.Y("Site:N", sort=labels, title="Site"))
                limits = base.mark_errorbar(ticks=True, color="#999").encode(
                    x=alt.X("low:Q", title="Infusions with a reaction",
                            scale=alt.Scale(domain=[0, top * 1.05], nice=True),
                            axis=alt.Axis(tickMinStep=1)), x2="high:Q")
                expected = base.mark_tick(color="#333", thickness=2).encode(x="expected:Q")
                observed = base.mark_point(filled=True, size=90).encode(
                    x="observed:Q",
                    color=alt.Color("funnel:N", title="Funnel (99.8%)", scale=scale),
                    tooltip=["Site", "observed", "expected", "low", "high", "funnel"])
                st.altair_chart(alt.layer(limits, expected, observed)
                                .properties(height=alt.Step(36)),
                                key="chart_site_funnel")
                st.caption("Grey bar: 99.8% limits; black tick: expected count; dot: observed.")

        full = d.rate_table(sites, "site_id", "Site")
        table = full[["Site", "Infusions", "With reaction", "Reaction rate",
                      "Reaction rate 95% CI"]].copy()
        if "expected_reaction_infusions" in sites.columns:
            table["Expected"] = [d.fmt_ratio(v, 1) for v in sites["expected_reaction_infusions"]]
        if "observed_to_expected" in sites.columns:
            table["Observed/expected"] = [d.fmt_ratio(v) for v in sites["observed_to_expected"]]
        if has_funnel:
            table["99.8% limits"] = [d.DASH if d.is_null(a) or d.is_null(b) else
                                     f"{float(a):g}–{float(b):g}" for a, b in zip(lo, hi)]
        table["Funnel"] = flag
        for c in ("Grade 3+ infusions", "Grade 3+ rate", "Patients"):
            if c in full.columns:
                table[c] = full[c]
        st.dataframe(table, hide_index=True, key="table_sites",
                     column_config=d.narrow("Infusions", "Expected", "Patients"))

# ------------------------------------------------------------------ submissions
st.subheader("Submissions")
st.caption(d.DEFINITIONS["submission_rows"] + " “Adds up” checks it for each accepted "
           "submission. A rejected submission lands nothing.")
if d.require(wh, "submissions"):
    subs = wh.table("submissions")
    if subs.empty:
        st.info("No submission has been ingested yet.")
    else:
        status = subs["status"].astype("string").str.lower()
        acc, rej = int((status == "accepted").sum()), int((status == "rejected").sum())
        st.markdown(f"{acc:,} accepted and {rej:,} rejected of "
                    f"{d.plural(len(subs), 'submission')} from "
                    f"{d.plural(subs['site_id'].nunique(), 'site')}.")
        f1, f2 = st.columns(2)
        site_filter = f1.multiselect("Site", sorted(subs["site_id"].astype(str).unique()),
                                     key="subs_sites")
        status_filter = f2.multiselect("Status", sorted(status.dropna().unique()),
                                       key="subs_status")
        view = subs.copy()
        if site_filter:
            view = view[view["site_id"].astype(str).isin(site_filter)]
        if status_filter:
            view = view[view["status"].astype("string").str.lower().isin(status_filter)]
        sort_col = "ingested_at" if "ingested_at" in view.columns else "submission_id"
        view = view.sort_values(sort_col, ascending=False, na_position="last")

        def balance(r) -> str:
            if str(r.get("status", "")).lower() != "accepted":
                return d.DASH
            parts = [r.get(c) for c in ("rows", "events", "duplicates", "quarantined")]
            if any(d.is_null(p) for p in parts):
                return d.DASH
            return "✓" if int(parts[0]) == sum(int(p) for p in parts[1:]) else "✗ does not add up"

        out = pd.DataFrame({
            "Site": view["site_id"].astype(str),
            "Submission": view["submission_id"].astype(str),
            "Status": view["status"].astype(str),
            "Rows": [d.fmt_int(v) for v in view["rows"]],
            "Events": [d.fmt_int(v) for v in view["events"]],
            "Duplicates": [d.fmt_int(v) for v in view["duplicates"]],
            "Quarantined": [d.fmt_int(v) for v in view["quarantined"]],
            "Adds up": [balance(r) for _, r in view.iterrows()],
            "Reason": [d.DASH if d.is_null(v) or str(v) == "" else str(v)
                       for v in view.get("reason", [None] * len(view))],
            "Ingested": [d.fmt_time(v) for v in view.get("ingested_at", [None] * len(view))],
            "Exported": [d.fmt_time(v) for v in view.get("exported_at", [None] * len(view))],
        })
        st.dataframe(out, hide_index=True, key="table_submissions",
                     column_config=d.narrow("Rows", "Events", "Adds up"))

# ------------------------------------------------------------------ data issues
st.subheader("Data issues")
st.caption("Records kept in the event history but left out of every figure, e.g. a reaction "
           "whose infusion has not arrived yet (it counts once its parent arrives).")
if d.require(wh, "data_issues"):
    issues = wh.table("data_issues")
    if issues.empty:
        st.success("No data issues: every current record has its parent records.")
    else:
        by = issues.groupby(["site_id", "issue"], dropna=False).size().reset_index(name="records")
        st.markdown(f"{d.plural(len(issues), 'record')} with an issue at "
                    f"{d.plural(issues['site_id'].nunique(), 'site')}: " + "; ".join(f"`{r.site_id}` {r.issue}: {r.records:,}"
                                          for r in by.itertuples()) + ".")
        site_filter = st.multiselect("Site", sorted(issues["site_id"].astype(str).unique()),
                                     key="issue_sites")
        view = issues if not site_filter else issues[issues["site_id"].astype(str)
                                                     .isin(site_filter)]
        cols = [c for c in ("site_id", "record_type", "ref", "issue", "detail") if c in view]
        st.dataframe(view[cols + [c for c in view.columns if c not in cols]]
                     .rename(columns={"site_id": "Site", "record_type": "Record type",
                                      "ref": "Ref", "issue": "Issue", "detail": "Detail"}),
                     hide_index=True, key="table_issues")
