"""Signals and premedication: sequential signal detection of the reaction rate per regimen
class, tumor type and site (binomial MaxSPRT, marts.signals), and the reaction rate with and
without premedication with the Mantel-Haenszel risk ratio over cycles
(marts.premedication_effect).  The method is in docs/methods.md."""
import pandas as pd
import streamlit as st

from dashboard import data as d
from dashboard import filters

SIGNAL_DEFINITION = (
    "Signal = binomial MaxSPRT (Kulldorff M, Davis RL, Kolczak M, Lewis E, Lieu T, Platt R. "
    "A maximized sequential probability ratio test for drug and vaccine safety surveillance. "
    "Sequential Analysis 2011;30:58–78), run separately in each regimen class, tumor type and "
    "site: its infusions in order of start, and after each the log-likelihood ratio (LLR) of "
    "the stratum's infusions with a reaction against the pooled reaction rate of the program "
    "(all current infusions); a signal when the LLR reaches the critical value for alpha 0.05, "
    "after at least 4 reactions (Kulldorff & Silva, REVSTAT 2017;15:373–394). Alpha is per "
    "stratum: with many strata some signals are expected by chance.")
PREMED_DEFINITION = (
    "Premedicated = the infusion's premedication list is not empty. Risk ratio = reaction rate "
    "with premedication / reaction rate without, within a cycle; over all cycles the "
    "Mantel–Haenszel risk ratio, stratified by cycle, with its 95% CI from the "
    "Greenland–Robins variance (Greenland S, Robins JM. Estimation of a common effect "
    "parameter from sparse follow-up data. Biometrics 1985;41:55–68). Rates: 95% Wilson "
    "score interval.")
STRATUM_TYPES = {"regimen_class": "Regimen class", "tumor_type": "Tumor type", "site_id": "Site"}

wh = d.warehouse()
flt = filters.current()

st.title("Signals and premedication")
st.caption(d.DEFINITIONS["current"])
filters.banner(flt, ("site", "tumor", "regimen"),
               "Signals: the filters choose the strata shown (a site stratum, tumor-type "
               "strata, regimen-class strata); each stratum's test runs over its whole history "
               "against the program's pooled rate, so it is not recomputed. Premedication: the "
               "Mantel–Haenszel comparison is over the whole program, not filtered.")


def num(x, digits: int = 2) -> str:
    return d.fmt_ratio(x, digits)


def rr_ci(lo, hi) -> str:
    if d.is_null(lo) or d.is_null(hi):
        return d.DASH
    return f"{float(lo):.2f}–{float(hi):.2f}"


# ------------------------------------------------------------------ signals
st.subheader("Sequential signal detection")
st.caption(SIGNAL_DEFINITION)
if d.require(wh, "signals"):
    sig = wh.table("signals")
    if flt.active:
        sig = filters.filter_strata(sig, flt)
    if sig.empty:
        st.info("No monitored stratum passes the filters." if flt.active
                else "`marts.signals` has no rows: no current infusions yet.")
    else:
        first = sig.iloc[0]
        parts = [f"Baseline (H0): pooled reaction rate {d.fmt_pct(first.get('baseline'))}"]
        if not d.is_null(first.get("threshold")):
            crit = f"critical value {float(first['threshold']):.3f} for alpha 0.05"
            if not d.is_null(first.get("attained_alpha")):
                crit += f" (exact false-alarm probability {float(first['attained_alpha']):.4f})"
            parts.append(crit)
        else:
            parts.append("no test possible (the pooled rate is 0 or 1)")
        if not d.is_null(first.get("max_infusions")):
            parts.append(f"surveillance of the first {d.fmt_int(first['max_infusions'])} "
                         "infusions of each stratum (100 reactions expected)")
        st.markdown("; ".join(parts) + ".")

        is_signal = sig["status"].astype("string") == "signal"
        opened = sig[is_signal].sort_values("first_signalled_at", ascending=False,
                                            na_position="last", kind="stable")
        rest = sig[~is_signal].sort_values(["stratum_type", "stratum"], kind="stable")
        ordered = pd.concat([opened, rest], ignore_index=True)
        st.markdown(f"**{d.plural(len(opened), 'open signal')}** of "
                    f"{d.plural(len(sig), 'stratum', 'strata')} monitored"
                    + (" (newest first)." if len(opened) else "."))

        table = pd.DataFrame({
            "Status": ordered["status"].astype(str),
            "First signalled": [d.fmt_time(v) for v in ordered["first_signalled_at"]],
            "Stratum type": [STRATUM_TYPES.get(str(v), str(v)) for v in ordered["stratum_type"]],
            "Stratum": [d.label_of(v) for v in ordered["stratum"]],
        })
        table["Infusions"] = [d.fmt_int(v) for v in ordered["infusions"]]
        if "monitored_infusions" in ordered.columns:
            table["Monitored"] = [d.fmt_int(v) for v in ordered["monitored_infusions"]]
        table["Observed"] = [d.fmt_int(v) for v in ordered["observed"]]
        table["Expected"] = [num(v, 1) for v in ordered["expected"]]
        table["LLR"] = [num(v, 3) for v in ordered["statistic"]]
        table["Threshold"] = [num(v, 3) for v in ordered["threshold"]]
        if "signalled_at_infusion" in ordered.columns:
            table["At infusion"] = [d.fmt_int(v) for v in ordered["signalled_at_infusion"]]
        if "observed_at_signal" in ordered.columns:  # a warehouse built before these columns has none
            table["Observed at signal"] = [d.fmt_int(v) for v in ordered["observed_at_signal"]]
            table["Expected at signal"] = [num(v, 1) for v in ordered["expected_at_signal"]]
            table["LLR at signal"] = [num(v, 3) for v in ordered["llr_at_signal"]]
        st.dataframe(table, hide_index=True, key="table_signals",
                     column_config=d.narrow("Status", "Infusions", "Observed", "Expected",
                                            "LLR", "Threshold"))
        d.download(table, "signals", "signals")
        st.caption("Observed = infusions with a reaction among the monitored ones; expected = "
                   "monitored infusions × baseline. LLR = the highest log-likelihood ratio so "
                   "far (with at least 4 reactions); first signalled = start of the infusion at "
                   "which it first reached the threshold (at infusion = its position in the "
                   "stratum). Observed, expected and LLR at signal are the figures at that "
                   "infusion: a signal is never withdrawn, so today's counts may have fallen back "
                   "since. A signal is a prompt to look, not a finding.")

# ------------------------------------------------------------------ premedication
st.subheader("Premedication")
st.caption(PREMED_DEFINITION)
if d.require(wh, "premedication_effect"):
    pe = wh.table("premedication_effect")
    pooled = pe[pe["cycle"].isna()]
    cycles = pe[pe["cycle"].notna()].sort_values("cycle", kind="stable")
    if not pooled.empty:
        mh = pooled.iloc[0]
        n_strata = d.as_int(mh.get("informative_strata"))
        if d.is_null(mh.get("risk_ratio")):
            line = ("Mantel–Haenszel risk ratio, premedicated vs not: — (no cycle has "
                    "reactions to compare in both groups)")
        else:
            line = (f"Mantel–Haenszel risk ratio, premedicated vs not, stratified by cycle: "
                    f"**{num(mh['risk_ratio'])}** (95% CI {rr_ci(mh.get('rr_ci_low'), mh.get('rr_ci_high'))})"
                    f" over {d.plural(n_strata, 'cycle')} with both groups")
        if not d.is_null(mh.get("crude_risk_ratio")):
            line += f"; crude (unstratified) {num(mh['crude_risk_ratio'])}"
        st.markdown(line + ".")
        st.markdown(
            d.rate_sentence("With premedication: reaction rate",
                            mh["premedicated_reaction_infusions"], mh["premedicated_infusions"],
                            "infusions", mh.get("premedicated_rate"),
                            mh.get("premedicated_ci_low"), mh.get("premedicated_ci_high"))
            + "  \n"
            + d.rate_sentence("Without premedication: reaction rate",
                              mh["not_premedicated_reaction_infusions"],
                              mh["not_premedicated_infusions"], "infusions",
                              mh.get("not_premedicated_rate"), mh.get("not_premedicated_ci_low"),
                              mh.get("not_premedicated_ci_high")))
    rows = pd.concat([cycles, pooled], ignore_index=True)
    if rows.empty:
        st.info("`marts.premedication_effect` has no rows: no current infusions yet.")
    else:
        table = pd.DataFrame({"Cycle": [d.label_of(c, "all cycles") for c in rows["cycle"]]})
        table["Premedicated"] = [f"{d.as_int(k):,} of {d.as_int(n):,}" for k, n in zip(
            rows["premedicated_reaction_infusions"], rows["premedicated_infusions"])]
        table["Rate with"] = [d.fmt_pct(v) for v in rows["premedicated_rate"]]
        table["95% CI with"] = [d.fmt_ci(a, b) for a, b in zip(rows["premedicated_ci_low"],
                                                               rows["premedicated_ci_high"])]
        table["Not premedicated"] = [f"{d.as_int(k):,} of {d.as_int(n):,}" for k, n in zip(
            rows["not_premedicated_reaction_infusions"], rows["not_premedicated_infusions"])]
        table["Rate without"] = [d.fmt_pct(v) for v in rows["not_premedicated_rate"]]
        table["95% CI without"] = [d.fmt_ci(a, b) for a, b in zip(
            rows["not_premedicated_ci_low"], rows["not_premedicated_ci_high"])]
        table["Risk ratio"] = [num(v) for v in rows["risk_ratio"]]
        table["Risk ratio 95% CI"] = [rr_ci(a, b) for a, b in zip(rows["rr_ci_low"],
                                                                 rows["rr_ci_high"])]
        st.dataframe(table, hide_index=True, key="table_premedication",
                     column_config=d.narrow("Cycle", "Rate with", "Rate without", "Risk ratio"))
        d.download(table, "premedication", "premedication")
        st.caption("“k of n” = infusions with a reaction of infusions. Per cycle the risk ratio "
                   "has the usual log interval (the Greenland–Robins variance with one stratum); "
                   "“all cycles” is the Mantel–Haenszel estimate. A cycle where one group has "
                   "no infusion has no ratio and adds nothing to it; a ratio of 0 (no reaction "
                   "with premedication) has no log interval. Premedication is not randomised: "
                   "it is given more after a reaction, so the ratio is not a causal effect.")
