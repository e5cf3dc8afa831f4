"""Overview: the headline figures with their denominators, and how fresh the data is."""
import pandas as pd
import streamlit as st

from dashboard import data as d
from dashboard import filters

wh = d.warehouse()
flt = filters.current()

st.title("Overview")
st.caption("Cadonilimab (AK104) infusion-related and hypersensitivity reactions, rechallenge "
           "and immune-related adverse events across the reporting sites. "
           + d.DEFINITIONS["current"])

tot = d.totals(wh)
rech = wh.table("rechallenge_outcomes")
subs = wh.table("submissions")
issues = wh.sql(d.ISSUE_COUNTS_SQL) if "data_issues" in wh.tables else None   # per site and issue
by_site = wh.table("reaction_rate_by_site")

# Filters: rates, patients and rechallenge recomputed from the core tables (same
# definitions); submissions, data issues and sites narrowed by the site filter only.
if flt.active and filters.can_filter(wh, "infusion_outcomes", "patient_rechallenge"):
    t = filters.query(wh, filters.totals_sql(flt)).iloc[0]
    tot = {"source": "core.infusion_outcomes",
           **{c: d.as_int(t[c]) for c in ("infusions", "reaction_infusions",
                                          "grade3plus_infusions", "patients")}}
    rech = filters.query(wh, filters.rechallenge_sql(flt))
    filters.banner(flt, ("site", "tumor", "regimen", "dates"),
                   "Rates, patients and rechallenge are recomputed over the filtered infusions "
                   "(rechallenge: patients whose index infusion passes); sites, submissions, "
                   "quarantine and data issues follow the site filter only.")
    if flt.site:
        subs = subs[subs["site_id"] == flt.site] if subs is not None else None
        if issues is not None:
            issues = issues[issues["site_id"] == flt.site]
        by_site = by_site[by_site["site_id"] == flt.site] if by_site is not None else None
elif flt.active:
    filters.banner(flt, (), "This warehouse has no core.infusion_outcomes to filter: "
                   "rebuild it with `safety-ledger build`.")
else:
    filters.banner(flt, ("site", "tumor", "regimen", "dates"))

# ------------------------------------------------------------------ reactions and patients
c1, c2, c3, c4 = st.columns(4)
with c1:
    if tot is None:
        d.headline("Reaction rate", d.DASH, d.missing_table_message(wh, "reaction_rate_by_site"))
    else:
        rate, _, _ = d.wilson(tot["reaction_infusions"], tot["infusions"])
        d.headline("Reaction rate", d.fmt_pct(rate),
                   d.rate_sentence("Reaction rate", tot["reaction_infusions"], tot["infusions"],
                                   "infusions"),
                   d.DEFINITIONS["reaction_rate"])
with c2:
    if tot is None:
        d.headline("Grade 3+ rate", d.DASH, d.missing_table_message(wh, "reaction_rate_by_site"))
    else:
        rate, _, _ = d.wilson(tot["grade3plus_infusions"], tot["infusions"])
        d.headline("Grade 3+ rate", d.fmt_pct(rate),
                   d.rate_sentence("Grade 3+ rate", tot["grade3plus_infusions"],
                                   tot["infusions"], "infusions"),
                   d.DEFINITIONS["grade3plus_rate"])
with c3:
    if tot is None or tot.get("patients") is None:
        d.headline("Patients", d.DASH, d.missing_table_message(wh, "reaction_rate_by_site"))
    else:
        d.headline("Patients", d.fmt_int(tot["patients"]),
                   f"{d.plural(tot['patients'], 'patient')} with ≥1 current infusion, "
                   f"who received {d.plural(tot['infusions'], 'infusion')}",
                   "Patients are counted once, at their site.")
with c4:
    if rech is None:
        d.headline("Rechallenge success", d.DASH,
                   d.missing_table_message(wh, "rechallenge_outcomes"))
    else:
        indexed = int(rech["patients_with_index_reaction"].fillna(0).sum())
        rechallenged = int(rech["rechallenged"].fillna(0).sum())
        success = int(rech["tolerated"].fillna(0).sum() + rech["breakthrough"].fillna(0).sum())
        rate, _, _ = d.wilson(success, rechallenged)
        d.headline("Rechallenge success", d.fmt_pct(rate),
                   d.rate_sentence("Rechallenge success", success, rechallenged,
                                   "rechallenged patients")
                   + f"  \n{d.plural(indexed, 'patient')} with an index reaction, "
                     f"{indexed - rechallenged:,} not rechallenged",
                   d.DEFINITIONS["rechallenge_success"])

# ------------------------------------------------------------------ sites and submissions
c1, c2, c3, c4 = st.columns(4)
with c1:
    if by_site is None and subs is None:
        d.headline("Sites", d.DASH, d.missing_table_message(wh, "reaction_rate_by_site"))
    else:
        with_inf = (int((by_site["infusions"].fillna(0) > 0).sum())
                    if by_site is not None else None)
        submitting = int(subs["site_id"].nunique()) if subs is not None else None
        parts = []
        if with_inf is not None:
            parts.append(f"{d.plural(with_inf, 'site')} with current infusions")
        if submitting is not None:
            parts.append(f"{d.plural(submitting, 'site')} "
                         f"{'has' if submitting == 1 else 'have'} sent submissions")
        d.headline("Sites", d.fmt_int(with_inf if with_inf is not None else submitting),
                   "; ".join(parts))
with c2:
    if subs is None:
        d.headline("Submissions", d.DASH, d.missing_table_message(wh, "submissions"))
    else:
        status = subs["status"].astype("string").str.lower()
        acc, rej = int((status == "accepted").sum()), int((status == "rejected").sum())
        d.headline("Submissions accepted / rejected", f"{acc:,} / {rej:,}",
                   f"{acc:,} accepted and {rej:,} rejected of "
                   f"{d.plural(len(subs), 'submission')}",
                   "A rejected submission lands nothing: see Sites and submissions for "
                   "the reason.")
with c3:
    if subs is None:
        d.headline("Quarantined rows", d.DASH, d.missing_table_message(wh, "submissions"))
    else:
        q = int(subs["quarantined"].fillna(0).sum())
        rows = int(subs.loc[subs["status"].astype("string").str.lower() == "accepted",
                            "rows"].fillna(0).sum())
        ev = int(subs["events"].fillna(0).sum())
        dup = int(subs["duplicates"].fillna(0).sum())
        d.headline("Quarantined rows", d.fmt_int(q),
                   f"{q:,} quarantined of {d.plural(rows, 'row')} in accepted submissions "
                   f"({d.plural(ev, 'event')}, {d.plural(dup, 'duplicate')} dropped)",
                   d.DEFINITIONS["submission_rows"])
with c4:
    if issues is None:
        d.headline("Data issues", d.DASH, d.missing_table_message(wh, "data_issues"))
    else:
        n_issues = int(issues["records"].sum())
        d.headline("Data issues", d.fmt_int(n_issues),
                   f"{d.plural(n_issues, 'record')} left out of the figures, at "
                   f"{d.plural(issues['site_id'].nunique(), 'site')}",
                   "For example a reaction whose infusion has not arrived yet: it counts once "
                   "its parent arrives.")

# ------------------------------------------------------------------ open signals
st.subheader("Open signals")
st.caption("Binomial MaxSPRT (Kulldorff et al. 2011, Sequential Analysis 30:58–78) of each "
           "regimen class, tumor type and site against the pooled reaction rate of the program; "
           "method and every stratum on the Signals and premedication page.")
signals = wh.table("signals")
if signals is None:
    st.info(d.missing_table_message(wh, "signals"))
else:
    if flt.active:
        signals = filters.filter_strata(signals, flt)
        st.caption("Filters choose the strata shown (a site, tumor types, regimen classes); a "
                   "stratum's test runs over its whole history, so the date range does not "
                   "apply here.")
    opened = signals[signals["status"].astype("string") == "signal"].sort_values(
        "first_signalled_at", ascending=False, na_position="last", kind="stable")
    if opened.empty:
        st.markdown(f"No open signal in {d.plural(len(signals), 'monitored stratum', 'monitored strata')}.")
    else:
        st.markdown(f"**{d.plural(len(opened), 'open signal')}** in "
                    f"{d.plural(len(signals), 'monitored stratum', 'monitored strata')}, newest first:")
        kinds = {"regimen_class": "Regimen class", "tumor_type": "Tumor type", "site_id": "Site"}
        shown = pd.DataFrame({
            "First signalled": [d.fmt_time(v) for v in opened["first_signalled_at"]],
            "Stratum type": [kinds.get(str(v), str(v)) for v in opened["stratum_type"]],
            "Stratum": [d.label_of(v) for v in opened["stratum"]],
            "Observed": [d.fmt_int(v) for v in opened["observed"]],
            "Expected": [d.fmt_ratio(v, 1) for v in opened["expected"]],
            "LLR": [d.fmt_ratio(v, 3) for v in opened["statistic"]],
            "Threshold": [d.fmt_ratio(v, 3) for v in opened["threshold"]],
        })
        if "observed_at_signal" in opened.columns:  # a warehouse built before these columns has none
            shown["Observed at signal"] = [d.fmt_int(v) for v in opened["observed_at_signal"]]
            shown["Expected at signal"] = [d.fmt_ratio(v, 1) for v in opened["expected_at_signal"]]
        st.dataframe(shown, hide_index=True, key="table_open_signals")
        st.caption("Observed and expected: today's counts; at signal: when the LLR first reached "
                   "the threshold. LLR: the highest so far. A signal is never withdrawn.")
        d.download(shown, "open-signals", "open_signals")

# ------------------------------------------------------------------ freshness
st.subheader("Data freshness")
info = d.build_info(wh)
latest = None
if subs is not None and "ingested_at" in subs.columns and subs["ingested_at"].notna().any():
    latest = subs.sort_values("ingested_at", ascending=False, na_position="last").iloc[0]

as_of = info.get("as_of") if info else None
lines = [
    f"**Warehouse built:** {d.fmt_time(info.get('built_at')) if info else d.DASH}",
    "**Events as of:** " + (d.fmt_time(as_of) if not d.is_null(as_of)
                            else ("build time (every ingested event)" if info else d.DASH)),
]
if latest is not None:
    lines.append(f"**Latest ingested submission:** {d.fmt_time(latest['ingested_at'])} — "
                 f"`{latest['site_id']}` / `{latest['submission_id']}`, exported "
                 f"{d.fmt_time(latest.get('exported_at'))}, {latest['status']}")
else:
    lines.append(f"**Latest ingested submission:** {d.DASH}")
with st.container(border=True):
    st.markdown("  \n".join(lines))
if info is None:
    st.info(d.missing_table_message(wh, "build_info"))
elif info["events"]:
    ev = pd.DataFrame({"Events table": list(info["events"].keys()),
                       "Events in this build": [d.fmt_int(v) if pd.api.types.is_number(v)
                                                else str(v) for v in info["events"].values()]})
    with st.expander("Events per table in this build", expanded=False):
        st.dataframe(ev, hide_index=True, key="table_build_events")
        d.download(ev, "build-events", "build_events")
