"""Literature: the publications on cadonilimab the pipeline has ingested."""
import pandas as pd
import streamlit as st

from dashboard import data as d

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
