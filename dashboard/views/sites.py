"""Sites and submissions: per-site reaction rate against expectation, the submission
ledger, and the data issues that keep records out of the figures."""
import altair as alt
import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard import data as d

ISSUES_OF_SITES_SQL = ("select * from marts.data_issues where list_contains(?::VARCHAR[], site_id) "
                       "order by site_id, record_type, ref")

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

        # Funnel plot: observed/expected against the expected count, with the 99.8% limits.
        has_funnel = {"funnel_low", "funnel_high", "expected_reaction_infusions"} <= set(sites)
        if has_funnel:
            lo = pd.to_numeric(sites["funnel_low"], errors="coerce")
            hi = pd.to_numeric(sites["funnel_high"], errors="coerce")
            exp = pd.to_numeric(sites["expected_reaction_infusions"], errors="coerce")
            obs = pd.to_numeric(sites["reaction_infusions"], errors="coerce")
            pts = pd.DataFrame({
                "site": labels, "expected": exp.values, "observed": obs.values,
                "ratio": (obs / exp.where(exp > 0)).values,
                "low_ratio": (lo / exp.where(exp > 0)).values,
                "high_ratio": (hi / exp.where(exp > 0)).values,
                "limits": [d.DASH if d.is_null(a) or d.is_null(b) else f"{int(a)}–{int(b)}"
                           for a, b in zip(lo, hi)],
                "funnel": flag,
                "outside": [f == "outside funnel" for f in flag],
            }).dropna(subset=["ratio"])
            st.markdown("**Funnel plot: observed/expected against the expected count**")
            if pts.empty:
                st.info("No site has an expected count above 0 yet, so there is no funnel "
                        "to draw.")
            else:
                curve = charts.funnel_curve(pooled, 0.8 * float(pts["expected"].min()),
                                            1.1 * float(pts["expected"].max()))
                st.altair_chart(charts.funnel_chart(pts, curve, colour_scale=scale),
                                key="chart_site_funnel")
                named = [s for s, o in zip(pts["site"], pts["outside"]) if o]
                left_out = len(sites) - len(pts)
                st.caption(
                    "Each dot is a site: its infusions with a reaction / its expected count "
                    "(indirect standardization: the sum over its infusions of the pooled "
                    "reaction rate of their (cycle, tumor type) stratum), plotted at that "
                    "expected count. Dashed curves: the exact binomial 99.8% limits "
                    "(0.001 and 0.999 quantiles of Binomial(n, p), divided by the expected "
                    f"count n·p) for a site at the program's pooled rate p = "
                    f"{d.fmt_pct(pooled)} ({k_total:,} of {n_total:,} infusions). "
                    "Grey bar: the site's own exact 99.8% limits, Binomial(its infusions, "
                    "its expected / its infusions): these decide “outside”, and a count on "
                    "a limit is inside. Solid line: observed = expected. Sites outside their "
                    "limits are named"
                    + (f" ({', '.join(named)})" if named else " (none)") + ". "
                    + (f"Not drawn: {d.plural(left_out, 'site')} with no expected count "
                       "(no current infusion). " if left_out else "")
                    + "Method: Spiegelhalter DJ. Funnel plots for comparing institutional "
                      "performance. Stat Med 2005;24:1185–1202.")

        full = d.rate_table(sites, "site_id", "Site")
        table = full[["Site", "Infusions", "With reaction", "Reaction rate",
                      "Reaction rate 95% CI"]].copy()
        if "expected_reaction_infusions" in sites.columns:
            table["Expected"] = [d.fmt_ratio(v, 1) for v in sites["expected_reaction_infusions"]]
        if "observed_to_expected" in sites.columns:
            table["Observed/expected"] = [d.fmt_ratio(v) for v in sites["observed_to_expected"]]
        if "expected_reaction_infusions" in sites.columns:
            # O/E = (k/n) / (E/n) with E fixed: the Wilson interval of the rate scaled by n/E
            scale_oe = [b / e if not d.is_null(e) and e > 0 and d.as_int(b) > 0 else None
                        for b, e in zip(sites["infusions"], sites["expected_reaction_infusions"])]
            table["O/E 95% CI"] = [d.DASH if f is None or d.is_null(a) or d.is_null(b) else
                                   f"{float(a) * f:.2f}–{float(b) * f:.2f}"
                                   for f, a, b in zip(scale_oe, sites["ci_low"], sites["ci_high"])]
        if has_funnel:
            table["99.8% limits"] = [d.DASH if d.is_null(a) or d.is_null(b) else
                                     f"{float(a):g}–{float(b):g}" for a, b in zip(lo, hi)]
        table["Funnel"] = flag
        for c in ("Grade 3+ infusions", "Grade 3+ rate", "Patients"):
            if c in full.columns:
                table[c] = full[c]
        st.dataframe(table, hide_index=True, key="table_sites",
                     column_config=d.narrow("Infusions", "Expected", "Patients"))
        d.download(table, "reaction-rate-by-site", "sites")
        st.caption("Observed/expected 95% CI: the site's 95% Wilson interval of its reaction "
                   "rate times its infusions / its expected count (the expected count taken "
                   "as known). 99.8% limits: the counts of infusions with a reaction between "
                   "which the site is inside its funnel.")

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
        d.download(out, "submissions", "submissions")

# ------------------------------------------------------------------ data issues
st.subheader("Data issues")
st.caption("Records kept in the event history but left out of every figure, e.g. a reaction "
           "whose infusion has not arrived yet (it counts once its parent arrives).")
if d.require(wh, "data_issues"):
    # the rows are fetched for the chosen sites only (a large program has tens of
    # thousands of them: analysts query marts.data_issues for all)
    by = wh.sql(d.ISSUE_COUNTS_SQL)
    if by.empty:
        st.success("No data issues: every current record has its parent records.")
    else:
        total = int(by["records"].sum())
        st.markdown(f"{d.plural(total, 'record')} with an issue at "
                    f"{d.plural(by['site_id'].nunique(), 'site')}: " + "; ".join(
                        f"`{r.site_id}` {r.issue}: {r.records:,}" for r in by.itertuples()) + ".")
        site_filter = st.multiselect("Site", sorted(by["site_id"].astype(str).unique()), key="issue_sites",
                                     placeholder="Choose sites to list all their records")
        if site_filter:
            view = wh.sql(ISSUES_OF_SITES_SQL, [site_filter])
        else:
            view = wh.sql("select * from marts.data_issues order by site_id, record_type, ref limit 500")
            if total > len(view):
                st.caption(f"The first {len(view):,} of {total:,} records (by site, record type and ref): "
                           "choose sites to list, and download, all of theirs.")
        cols = [c for c in ("site_id", "record_type", "ref", "issue", "detail") if c in view]
        shown = view[cols + [c for c in view.columns if c not in cols]].rename(
            columns={"site_id": "Site", "record_type": "Record type", "ref": "Ref", "issue": "Issue",
                     "detail": "Detail"})
        st.dataframe(shown, hide_index=True, key="table_issues")
        d.download(shown, "data-issues", "issues")
