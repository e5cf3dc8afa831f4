"""Literature: the publications on cadonilimab the pipeline has ingested."""
import pandas as pd
import streamlit as st

from dashboard import data as d
from dashboard import literature_figures as lf

wh = d.warehouse()

st.title("Literature")
st.caption("Publications on cadonilimab from the literature drops, with the finding that "
           "bears on safety. First ingested = when the pipeline first saw the publication.")

if not d.require(wh, "literature"):
    st.stop()

lit = wh.table("literature")
if lit.empty:
    st.info("`marts.literature` has no rows: no literature drop has been ingested yet.")
    st.stop()

STUDY_TYPES = ["case_report", "phase1", "phase1b_2", "phase2", "phase3", "real_world",
               "health_economics", "review", "other"]
lit["study_type"] = [d.label_of(v) for v in lit["study_type"]]
lit["indication"] = [d.label_of(v) for v in lit["indication"]]
present_types = sorted(lit["study_type"].unique(),
                       key=lambda t: (STUDY_TYPES.index(t) if t in STUDY_TYPES else 99, t))
present_ind = sorted(lit["indication"].unique())

f1, f2, f3 = st.columns([1, 1, 1])
types = f1.multiselect("Study type", present_types, key="lit_types",
                       placeholder="All study types")
inds = f2.multiselect("Indication", present_ind, key="lit_indications",
                      placeholder="All indications")
text = f3.text_input("Search title and finding", key="lit_search")

view = lit
if types:
    view = view[view["study_type"].isin(types)]
if inds:
    view = view[view["indication"].isin(inds)]
if text.strip():
    needle = text.strip().lower()
    hay = (view["title"].astype(str) + " " + view["key_finding"].astype(str)).str.lower()
    view = view[hay.str.contains(needle, regex=False)]

st.markdown(f"**{len(view):,} of {d.plural(len(lit), 'publication')}**")
counts = view.groupby("study_type").size().reindex(present_types).dropna().astype(int)
if len(counts):
    st.caption("By study type: " + ", ".join(f"{t} {n}" for t, n in counts.items()))

if "first_ingested_at" in view.columns:
    view = view.sort_values("first_ingested_at", ascending=False, na_position="last")
out = pd.DataFrame({
    "ID": view["publication_id"].astype(str),
    "Title": view["title"].astype(str),
    "Indication": view["indication"],
    "Study type": view["study_type"],
    "Key finding": view["key_finding"].astype(str),
    "First ingested": [d.fmt_time(v) for v in view.get("first_ingested_at",
                                                        [None] * len(view))],
})
st.table(out, hide_index=True)  # a static table: titles and findings wrap, whole

# ------------------------------------------------------------------ reported figures
st.subheader("Figures the publications report")
st.caption("ORR = objective response rate, PFS = progression-free survival, OS = overall "
           "survival, ICER = incremental cost-effectiveness ratio (per QALY), as printed in "
           "each publication's key finding (the seed paper's Table 3 “Key result”), split by "
           "measure, nothing converted or rounded. The literature format has no numeric "
           "fields, so these are read from the text (dashboard/literature_figures.py); a "
           "finding that names no such figure is not listed here.")
fig_rows = []
for r in view.itertuples():
    f = lf.figures("" if d.is_null(r.key_finding) else str(r.key_finding))
    if f:
        fig_rows.append({"ID": str(r.publication_id), "Title": str(r.title),
                         "Indication": r.indication, "Study type": r.study_type,
                         **{m: f.get(m, d.DASH) for m in ("ORR", "PFS", "OS", "ICER")},
                         "Other figures": f.get("Other", d.DASH)})
if fig_rows:
    figs = pd.DataFrame(fig_rows).sort_values("ID")
    counts = {m: int((figs[m] != d.DASH).sum()) for m in ("ORR", "PFS", "OS", "ICER")}
    st.markdown(f"{d.plural(len(figs), 'publication')} of the {len(view):,} shown report a "
                "figure: " + ", ".join(f"{m} {n}" for m, n in counts.items()) + ".")
    st.dataframe(figs, hide_index=True, key="table_literature_figures",
                 column_config={"Title": st.column_config.TextColumn(width="large")})
    d.download(figs, "literature-figures", "literature_figures")
else:
    st.info("None of the publications shown reports an ORR, PFS, OS or ICER figure.")

st.subheader("Safety rates the publications report")
rates = [x for r in view.itertuples() if not d.is_null(r.key_finding)
         for x in lf.reported_rates(str(r.publication_id), str(r.key_finding))]
rates.sort(key=lambda x: x.publication_id)  # stable: a publication's rates in printed order
if rates:
    stated = pd.DataFrame({
        "ID": [x.publication_id for x in rates],
        "Event": ["infusion-related reaction" if x.kind == "reaction" else "irAE"
                  for x in rates],
        "Grade": [x.grade for x in rates],
        "Rate": [f"{x.rate * 100:g}%" for x in rates],
        "Denominator": [x.per for x in rates],
        "As printed": [x.text for x in rates],
    })
    st.dataframe(stated, hide_index=True, key="table_literature_rates")
    d.download(stated, "literature-rates", "literature_rates")
    st.caption("Infusion-reaction rates are drawn as reference lines on the Reaction rates "
               "page (any grade on the reaction-rate charts, grade 3+ on the grade 3+ "
               "charts). irAE rates are listed only: the board's irAE charts are counts by "
               "month and per-category cumulative incidence, not an all-category rate.")
else:
    st.info("No publication shown states an infusion-reaction or irAE rate in its key "
            "finding (the seed paper's tables report efficacy and cost figures only), so no "
            "literature reference line is drawn on the rate charts.")
