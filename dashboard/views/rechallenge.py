"""Rechallenge after an index reaction: outcome tiers and success rate by protocol,
premedication and index grade band."""
import altair as alt
import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard import data as d
from dashboard import filters

wh = d.warehouse()
flt = filters.current()

st.title("Rechallenge")
st.caption(d.DEFINITIONS["rechallenge_success"] + " " + d.DEFINITIONS["rechallenge_tiers"])

if not d.require(wh, "rechallenge_outcomes"):
    st.stop()

can_filter = filters.can_filter(wh, "patient_rechallenge", "infusion_outcomes")
if flt.active and can_filter:
    raw = filters.query(wh, filters.rechallenge_sql(flt))
    filters.banner(flt, ("site", "tumor", "regimen", "dates"),
                   "Recomputed over the patients whose index infusion passes the filters (its "
                   "site, the patient's tumor type, its regimen class and start date), with the "
                   "definitions of marts.rechallenge_outcomes.")
else:
    raw = wh.table("rechallenge_outcomes")
    filters.banner(flt, () if flt.active else ("site", "tumor", "regimen", "dates"),
                   "This warehouse has no core.patient_rechallenge to filter: rebuild it with "
                   "`safety-ledger build`." if flt.active else "")
COUNTS = ["patients_with_index_reaction", "rechallenged", "tolerated", "breakthrough", "failed"]
for c in COUNTS:
    raw[c] = pd.to_numeric(raw[c], errors="coerce").fillna(0).astype(int)

indexed = int(raw["patients_with_index_reaction"].sum())
rechallenged = int(raw["rechallenged"].sum())
success = int(raw["tolerated"].sum() + raw["breakthrough"].sum())
not_rech = raw[raw["protocol"].isna()]

c1, c2 = st.columns(2)
with c1:
    rate, _, _ = d.wilson(success, rechallenged)
    d.headline("Rechallenge success", d.fmt_pct(rate),
               d.rate_sentence("Rechallenge success", success, rechallenged,
                               "rechallenged patients"),
               d.DEFINITIONS["rechallenge_success"])
with c2:
    n_not = int(not_rech["patients_with_index_reaction"].sum())
    bands = (not_rech.groupby(not_rech["index_grade_band"].map(d.label_of))
             ["patients_with_index_reaction"].sum())
    band_text = ", ".join(f"index grade {b}: {int(v):,}" for b, v in bands.items() if v)
    d.headline("Not rechallenged", d.fmt_int(n_not),
               f"{n_not:,} of {indexed:,} patients with an index reaction had no later "
               f"infusion" + (f" ({band_text})" if band_text else ""),
               "Index reaction = the reaction on the patient's earliest infusion with a reaction.")


def premed_label(v) -> str:
    if d.is_null(v):
        return d.DASH
    return "premedicated" if bool(v) else "no premedication"


rows = raw.copy()
rows["Protocol"] = [d.label_of(p, "not rechallenged") for p in rows["protocol"]]
rows["Premedication"] = [d.DASH if d.is_null(p) else premed_label(m)
                         for p, m in zip(rows["protocol"], rows["premedicated"])]
rows["Index grade"] = [d.label_of(b) for b in rows["index_grade_band"]]

GROUPINGS = {
    "Protocol × premedication × index grade": ["Protocol", "Premedication", "Index grade"],
    "Protocol": ["Protocol"],
    "Premedication": ["Premedication"],
    "Index grade band": ["Index grade"],
}
grouping = st.radio("Group by", list(GROUPINGS), horizontal=True, key="rechallenge_grouping")
keys = GROUPINGS[grouping]

if keys == GROUPINGS["Protocol × premedication × index grade"]:
    g = rows  # the mart's own rows, with its own intervals
    if "success_rate" not in g.columns:
        g = d.with_ci(g.assign(_s=g["tolerated"] + g["breakthrough"]), "_s", "rechallenged",
                      "success_rate", "ci_low", "ci_high")
else:
    g = rows.groupby(keys, dropna=False, sort=True)[COUNTS].sum().reset_index()
    w = [d.wilson(t + b, n) for t, b, n in zip(g["tolerated"], g["breakthrough"], g["rechallenged"])]
    g["success_rate"] = [x[0] for x in w]
    g["ci_low"] = [x[1] for x in w]
    g["ci_high"] = [x[2] for x in w]
# Not-rechallenged rows last.
g = (g.assign(_nr=[p == "not rechallenged" for p in g.get("Protocol", pd.Series([""] * len(g)))])
     .sort_values(["_nr"] + keys, kind="stable").drop(columns="_nr").reset_index(drop=True))
g["Group"] = [" · ".join(str(r[k]) for k in keys) for _, r in g.iterrows()]
g["success"] = g["tolerated"] + g["breakthrough"]

done = g[g["rechallenged"] > 0]

st.subheader("Outcome tiers")
st.caption(d.DEFINITIONS["rechallenge_tiers"] + " Counts of rechallenged patients.")
if done.empty:
    st.info("No patient has been rechallenged yet.")
else:
    tiers = done.melt(id_vars=["Group"], value_vars=["tolerated", "breakthrough", "failed"],
                      var_name="Outcome", value_name="Patients")
    tiers["order"] = tiers["Outcome"].map({"tolerated": 0, "breakthrough": 1, "failed": 2})
    scale = alt.Scale(domain=list(charts.TIER_COLOURS),
                             range=list(charts.TIER_COLOURS.values()))
    chart = charts.stacked_bars(tiers, x="Group", x_title=" · ".join(keys), y="Patients",
                                y_title="Rechallenged patients", colour="Outcome",
                                colour_title="Outcome", horizontal=True, colour_scale=scale,
                                order=list(done["Group"]),
                                tooltip=["Group", "Outcome", "Patients"])
    chart = chart.encode(order=alt.Order("order:Q"))
    st.altair_chart(chart, key="chart_tiers")

st.subheader("Success rate")
st.caption(d.DEFINITIONS["rechallenge_success"] + " Each group is labelled with its "
           "successes/rechallenged patients. Groups with no rechallenged patient have no "
           "rate (—) and are not drawn.")
frame = charts.interval_frame(list(g["Group"]), list(g["success"]), list(g["rechallenged"]),
                              list(g["success_rate"]), list(g["ci_low"]), list(g["ci_high"]))
if frame.empty:
    st.info("No patient has been rechallenged yet, so there is no success rate to draw.")
else:
    st.altair_chart(charts.interval_chart(frame, group_title=" · ".join(keys),
                                          rate_title="Rechallenge success",
                                          denominator="rechallenged patients"),
                    key="chart_success")

table = pd.DataFrame({k: g[k] for k in keys})
table["Index reactions"] = [d.fmt_int(v) for v in g["patients_with_index_reaction"]]
table["Rechallenged"] = [d.fmt_int(v) for v in g["rechallenged"]]
table["Success"] = [f"{s:,} of {n:,}" for s, n in zip(g["success"], g["rechallenged"])]
table["Success rate"] = [d.fmt_pct(v) for v in g["success_rate"]]
table["95% CI"] = [d.fmt_ci(a, b) for a, b in zip(g["ci_low"], g["ci_high"])]
table["Tolerated"] = [d.fmt_int(v) for v in g["tolerated"]]
table["Breakthrough"] = [d.fmt_int(v) for v in g["breakthrough"]]
table["Failed"] = [d.fmt_int(v) for v in g["failed"]]
st.dataframe(table, hide_index=True, key="table_rechallenge",
             column_config=d.narrow("Success", "Tolerated", "Failed"))
d.download(table, "rechallenge", "rechallenge")
st.caption("Index reactions = patients with an index reaction. Protocol and premedication are "
           "those of the rechallenge infusion; a patient with an index reaction and no later "
           "infusion is counted in a “not rechallenged” row.")

# ------------------------------------------------------------------ by protocol
PAPER_LABEL = "paper (published)"
OURS_LABEL = "this warehouse"
BP_COUNTS = ["rechallenged", "tolerated", "breakthrough", "failed", "premedicated"]


def protocol_rows(mart: pd.DataFrame) -> pd.DataFrame:
    """The warehouse's rows of marts.rechallenge_by_protocol, or, under the page's filters,
    the same figures recomputed from the filtered rows above (`raw`, whose protocol is the
    rechallenge infusion's): every protocol the mart lists, zeros kept."""
    ours = mart[mart["source"] == "warehouse"]
    if not (flt.active and can_filter):
        return ours
    done_rows = raw[raw["protocol"].notna()].copy()
    done_rows["premedicated_n"] = [n if (not d.is_null(m) and bool(m)) else 0
                                   for n, m in zip(done_rows["rechallenged"], done_rows["premedicated"])]
    agg = (done_rows.groupby("protocol")[["rechallenged", "tolerated", "breakthrough", "failed",
                                          "premedicated_n"]].sum()
           .rename(columns={"premedicated_n": "premedicated"}))
    listed = list(ours["protocol"]) + [p for p in agg.index if p not in set(ours["protocol"])]
    out = pd.DataFrame({"source": "warehouse", "protocol": listed})
    for c in BP_COUNTS:
        out[c] = [int(agg.loc[p, c]) if p in agg.index else 0 for p in listed]
    out["successes"] = out["tolerated"] + out["breakthrough"]
    w = [d.wilson(k, n) for k, n in zip(out["successes"], out["rechallenged"])]
    out["success_rate"] = [x[0] for x in w]
    out["ci_low"] = [x[1] for x in w]
    out["ci_high"] = [x[2] for x in w]
    out["reference_cases"] = None
    return out


st.subheader("Success by protocol")
st.caption(d.DEFINITIONS["rechallenge_protocol"] + " " + d.DEFINITIONS["rechallenge_tiers"])
if not wh.has("rechallenge_by_protocol"):
    st.info(d.missing_table_message(wh, "rechallenge_by_protocol"))
else:
    bp = wh.table("rechallenge_by_protocol")
    for c in BP_COUNTS + ["successes"]:
        bp[c] = pd.to_numeric(bp[c], errors="coerce").fillna(0).astype(int)
    bp = bp.sort_values(["protocol_order", "protocol"], kind="stable")
    ours = protocol_rows(bp)
    paper = bp[bp["source"] != "warehouse"]
    scope = (f"This warehouse's rows are recomputed under the filters ({flt.describe()}); "
             "the paper's rows are the published figures and do not change with them."
             if flt.active and can_filter else
             "Program-wide: the filters cannot be applied to this table (this warehouse has "
             "no core.patient_rechallenge)." if flt.active else
             "All rechallenged patients of this warehouse.")
    st.caption(scope + " " + d.DEFINITIONS["rechallenge_reference"])
    both = pd.concat([ours.assign(Source=OURS_LABEL), paper.assign(Source=PAPER_LABEL)],
                     ignore_index=True)
    both["success"] = both["tolerated"] + both["breakthrough"]
    both["Group"] = [f"{p} · {s}" for p, s in zip(both["protocol"], both["Source"])]
    frame = charts.interval_frame(list(both["Group"]), list(both["success"]),
                                  list(both["rechallenged"]), list(both["success_rate"]),
                                  list(both["ci_low"]), list(both["ci_high"]),
                                  colour=list(both["Source"]))
    if frame.empty:
        st.info("No rechallenged patient under any protocol, here or in the paper.")
    else:
        scale = alt.Scale(domain=[OURS_LABEL, PAPER_LABEL], range=["#1f4e79", "#999999"])
        st.altair_chart(charts.interval_chart(frame, group_title="Protocol · source",
                                              rate_title="Rechallenge success",
                                              denominator="rechallenged patients",
                                              colour_title="Source", colour_scale=scale),
                        key="chart_success_by_protocol")
        st.caption("Each point is labelled with its successes/rechallenged patients; a protocol "
                   "with no rechallenged patient has no rate (—) and is not drawn. Grey: the "
                   "paper's Table 4, not this warehouse.")
    ptable = pd.DataFrame({
        "Protocol": [d.label_of(v) for v in both["protocol"]],
        "Source": [OURS_LABEL if s == OURS_LABEL else
                   "Seed case series, Table 4 (published)"
                   + (f": {c}" if not d.is_null(c) else "")
                   for s, c in zip(both["Source"], both["reference_cases"])],
        "Rechallenged": [d.fmt_int(v) for v in both["rechallenged"]],
        "Successes": [f"{s:,} of {n:,}" for s, n in zip(both["success"], both["rechallenged"])],
        "Success rate": [d.fmt_pct(v) for v in both["success_rate"]],
        "95% CI": [d.fmt_ci(a, b) for a, b in zip(both["ci_low"], both["ci_high"])],
        "Tolerated": [d.fmt_int(v) for v in both["tolerated"]],
        "Breakthrough": [d.fmt_int(v) for v in both["breakthrough"]],
        "Failed": [d.fmt_int(v) for v in both["failed"]],
        "Premedicated": [d.fmt_int(v) for v in both["premedicated"]],
    })
    st.dataframe(ptable, hide_index=True, key="table_rechallenge_by_protocol",
                 column_config=d.narrow("Tolerated", "Failed", "Premedicated"))
    d.download(ptable, "rechallenge-by-protocol", "rechallenge_by_protocol")
    cite = next((c for c in paper["citation"] if not d.is_null(c)), None) if len(paper) else None
    if cite:
        st.caption(f"Reference rows: {cite}.")
    try:
        cases = wh.sql("select case_no, premedication, infusion_adjustment, "
                       "reaction_manifestation, outcome, treatment_cycle, protocol, "
                       "protocol_basis, tier, tier_basis from staging.ref_seed_table4 "
                       "order by case_no")
    except d.WarehouseError:  # a warehouse built before the reference model
        cases = None
    if cases is not None and not cases.empty:
        with st.expander("The paper's Table 4, case by case, and how each row is read"):
            st.dataframe(pd.DataFrame({
                "Case": [str(v) for v in cases["case_no"]],
                "Premedication": list(cases["premedication"]),
                "Infusion adjustment": list(cases["infusion_adjustment"]),
                "Reaction manifestation": list(cases["reaction_manifestation"]),
                "Outcome": list(cases["outcome"]),
                "Treatment cycle": list(cases["treatment_cycle"]),
                "Protocol (our reading)": list(cases["protocol"]),
                "Protocol read from": list(cases["protocol_basis"]),
                "Tier (our reading)": list(cases["tier"]),
                "Tier read from": list(cases["tier_basis"]),
            }), hide_index=True, key="table_seed_table4")

# ------------------------------------------------------------------ patients
st.subheader("Patients with an index reaction")
if not filters.can_filter(wh, "patient_rechallenge", "current_patients"):
    st.info("The patient list needs `core.patient_rechallenge`: run `safety-ledger build` to "
            "rebuild the warehouse with the current transforms.")
    st.stop()
pts = filters.query(wh, filters.timeline_patients_sql(flt))  # the Case timeline's list
shown_note = (f" (the first {len(pts):,} of {indexed:,})" if len(pts) < indexed else "")
st.caption("One row per patient (pseudonym) with an index reaction"
           + (", index infusion passing the filters" if flt.active else "")
           + f", earliest index reaction first{shown_note}. Select a row to open the patient's "
           "case timeline; any patient can be found by pseudonym there.")
if pts.empty:
    st.info("No patient with an index reaction" + (" passes the filters." if flt.active else "."))
    st.stop()
plist = pd.DataFrame({
    "Site": list(pts["site_id"]),
    "Patient": list(pts["patient_key"]),
    "Tumor type": [d.label_of(v) for v in pts["tumor_type"]],
    "Index cycle": [d.label_of(v) for v in pts["index_cycle"]],
    "Index infusion started": [d.fmt_time(v) for v in pts["index_started_at"]],
    "Index grade": [d.label_of(v) for v in pts["index_max_grade"]],
    "Rechallenge cycle": [d.label_of(v, d.DASH) for v in pts["rechallenge_cycle"]],
    "Protocol": [d.label_of(v, "not rechallenged") for v in pts["protocol"]],
    "Premedication": [d.DASH if d.is_null(p) else premed_label(m)
                      for p, m in zip(pts["protocol"], pts["premedicated"])],
    "Outcome": [d.label_of(v, d.DASH) for v in pts["rechallenge_outcome"]],
})
event = st.dataframe(plist, hide_index=True, key="table_rechallenge_patients",
                     on_select="rerun", selection_mode="single-row",
                     column_config=d.narrow("Index cycle", "Index grade", "Rechallenge cycle"))
d.download(plist, "rechallenge-patients", "rechallenge_patients")
chosen = list(event.selection.rows) if event is not None and hasattr(event, "selection") else []
if chosen:
    picked = plist.iloc[chosen[0]]
    st.switch_page("views/case_timeline.py",
                   query_params={"site": picked["Site"], "patient": picked["Patient"]})
