"""Case timeline: one pseudonymous patient's history in order (marts.patient_timeline):
infusions with cycle, regimen, premedication and protocol; reactions with onset, grade,
symptoms, treatment and outcome; irAEs; the index reaction, the rechallenge and its tier.

Reached from the sidebar, or by selecting a patient on the Rechallenge page (which passes
the patient as the query parameters `site` and `patient`, the pseudonym)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data as d
from dashboard import filters

SELECT_KEY = "timeline_patient"
APPLIED_KEY = "_timeline_linked"  # the last patient taken from the query parameters
SEARCHED_KEY = "_timeline_searched"  # the last pseudonym searched for
EXTRA_KEY = "_timeline_extra"  # patients added by a link or a search: {option: label}
SEP = " · "

wh = d.warehouse()
flt = filters.current()

st.title("Case timeline")
st.caption("One patient's current records in the order they happened: infusions, reactions "
           "on them (by minutes from the infusion's start) and irAEs (by onset date). Patients "
           "are shown by their pseudonym only. " + d.DEFINITIONS["rechallenge_tiers"])
filters.banner(flt, ("site", "tumor", "regimen", "dates"),
               "The filters choose which patients are listed (those whose index infusion "
               "passes them); a timeline always shows the patient's whole history.")

if not d.require(wh, "patient_timeline"):
    st.stop()


def words(x) -> str:
    """'chest_tightness' -> 'chest tightness'; a list -> 'a, b'; empty -> 'none'."""
    if x is None or (not isinstance(x, (list, tuple)) and d.is_null(x)):
        return "none"
    if isinstance(x, (list, tuple)) or hasattr(x, "tolist"):
        items = [str(v).replace("_", " ") for v in list(x)]
        return ", ".join(items) if items else "none"
    return str(x).replace("_", " ")


def day(x) -> str:
    return d.DASH if d.is_null(x) else pd.Timestamp(x).date().isoformat()


def regimen(row) -> str:
    agents = words(row["combination"])
    cls = d.label_of(row["regimen_class"])
    return cls if agents == "none" else f"{cls} (cadonilimab with {agents})"


if not filters.can_filter(wh, "patient_rechallenge", "current_patients"):
    st.info("This page needs `core.patient_rechallenge` and `core.current_patients`: run "
            "`safety-ledger build` to rebuild the warehouse with the current transforms.")
    st.stop()

listed = filters.query(wh, filters.timeline_patients_sql(flt))
options = [f"{s}{SEP}{k}" for s, k in zip(listed["site_id"], listed["patient_key"])]
labels = {
    o: f"{o} ({d.label_of(t)}; index reaction cycle {d.label_of(c)}, grade {d.label_of(g)})"
    for o, t, c, g in zip(options, listed["tumor_type"], listed["index_cycle"],
                          listed["index_max_grade"])
}


def add(site: str, key: str, tumor) -> str:
    """Offer a patient asked for by a link or a search (kept for this session)."""
    o = f"{site}{SEP}{key}"
    extra = st.session_state.setdefault(EXTRA_KEY, {})
    extra.setdefault(o, f"{o} ({d.label_of(tumor)})")
    if o not in labels:
        options.insert(0, o)
        labels[o] = extra[o]
    return o


for o, label in list(st.session_state.get(EXTRA_KEY, {}).items()):
    if o not in labels:
        options.insert(0, o)
        labels[o] = label

# A patient passed by a link (query parameters, e.g. from the Rechallenge page), once.
qp_site, qp_patient = st.query_params.get("site"), st.query_params.get("patient")
wanted = f"{qp_site}{SEP}{qp_patient}" if qp_site and qp_patient else None
if wanted and wanted != st.session_state.get(APPLIED_KEY):
    st.session_state[APPLIED_KEY] = wanted
    found = filters.query(wh, filters.patient_sql(qp_site, qp_patient))
    if found.empty:
        st.warning(f"No current patient {qp_patient} at {qp_site} in this warehouse.")
    else:
        st.session_state[SELECT_KEY] = add(qp_site, qp_patient, found["tumor_type"].iloc[0])

search = st.text_input("Find a patient by pseudonym", key="timeline_search",
                       placeholder="P-…", help="Any current patient, with or without a reaction.")
if search.strip():
    hits = wh.sql(filters.PATIENT_SEARCH_SQL, [search.strip()])
    if hits.empty:
        st.warning(f"No current patient has the pseudonym {search.strip()}.")
    elif st.session_state.get(SEARCHED_KEY) != search.strip():
        st.session_state[SEARCHED_KEY] = search.strip()
        st.session_state[SELECT_KEY] = add(hits["site_id"].iloc[0], hits["patient_key"].iloc[0],
                                           hits["tumor_type"].iloc[0])
    else:
        for s_, k_, t_ in zip(hits["site_id"], hits["patient_key"], hits["tumor_type"]):
            add(s_, k_, t_)

if not options:
    st.info("No patient with an index reaction" + (" passes the filters" if flt.active else "")
            + ": find one by pseudonym above.")
    st.stop()
if st.session_state.get(SELECT_KEY) not in labels:
    st.session_state[SELECT_KEY] = options[0]

note = (f"the first {filters.TIMELINE_LIST_LIMIT:,} " if len(listed) >= filters.TIMELINE_LIST_LIMIT
        else "")
choice = st.selectbox(f"Patient ({note}patients with an index reaction, earliest first)",
                      options, key=SELECT_KEY, format_func=lambda o: labels.get(o, o))
site_id, patient_key = choice.split(SEP, 1)
st.session_state[APPLIED_KEY] = choice
st.query_params["site"] = site_id  # the page's address names the patient shown
st.query_params["patient"] = patient_key

tl = wh.sql(filters.TIMELINE_SQL, [site_id, patient_key])
if tl.empty:
    st.info("This patient has no current record.")
    st.stop()

first = tl.iloc[0]
inf = tl[tl["event_type"] == "infusion"]
rx = tl[tl["event_type"] == "reaction"]
ir = tl[tl["event_type"] == "irae"]
age = d.DASH if d.is_null(first["age_at_first_dose"]) else f"{int(first['age_at_first_dose'])}"
st.subheader(f"{patient_key} at {site_id}")
st.markdown(f"{d.label_of(first['sex'])}, {age} years at first dose, tumor type "
            f"**{d.label_of(first['tumor_type'])}**, first dose {day(first['first_dose_date'])}. "
            f"{d.plural(len(inf), 'infusion')}, {d.plural(len(rx), 'reaction')}, "
            f"{d.plural(len(ir), 'irAE')}.")

# ------------------------------------------------------------------ rechallenge summary
index = inf[inf["role"] == "index"]
rech = inf[inf["role"] == "rechallenge"]
if index.empty:
    summary = "No index reaction: no infusion of this patient has a current reaction."
else:
    i = index.iloc[0]
    summary = (f"**Index reaction** on cycle {d.label_of(i['cycle'])} "
               f"({day(i['event_date'])}), grade band {d.label_of(i['index_grade_band'])}. ")
    if rech.empty:
        summary += "**Not rechallenged**: no later infusion."
    else:
        r = rech.iloc[0]
        summary += (f"**Rechallenge** on cycle {d.label_of(r['cycle'])} "
                    f"({day(r['event_date'])}), {d.label_of(r['protocol'])} protocol, "
                    + ("premedicated" if bool(r["premedicated"]) else "no premedication")
                    + f": **{d.label_of(r['rechallenge_tier'])}**.")
with st.container(border=True):
    st.markdown(summary)


# ------------------------------------------------------------------ narrative
def line(row) -> str:
    when = day(row["event_date"])
    if row["event_type"] == "infusion":
        dose = "" if d.is_null(row["dose_mg"]) else f"{float(row['dose_mg']):g} mg"
        dur = ("" if d.is_null(row["planned_duration_min"])
               else f" over {int(row['planned_duration_min'])} min")
        text = (f"**{when}** — cycle {d.label_of(row['cycle'])} infusion, {regimen(row)}, "
                f"{d.label_of(row['protocol'])} protocol, premedication "
                f"{words(row['premedication'])}, {dose}{dur}, "
                + ("completed" if row["completed"] is True or row["completed"] == 1
                   else "not completed") + ".")
        if row["role"] == "index":
            text += " *Index infusion.*"
        elif row["role"] == "rechallenge":
            text += f" *Rechallenge: {d.label_of(row['rechallenge_tier'])}.*"
        return text
    if row["event_type"] == "reaction":
        onset = "" if d.is_null(row["onset_min"]) else f", {int(row['onset_min'])} min in"
        return (f"**{when}**{onset} — reaction: {words(row['term'])}, grade "
                f"{d.label_of(row['grade'])}; symptoms {words(row['symptoms'])}; treatment "
                f"{words(row['treatment'])}; outcome {words(row['outcome'])}.")
    return (f"**{when}** — irAE: {words(row['category'])}, grade {d.label_of(row['grade'])}; "
            f"treatment {words(row['treatment'])}; outcome {words(row['outcome'])}.")


st.subheader("History")
st.markdown("\n".join(f"{int(n)}. {line(r)}" for n, (_, r) in
                      zip(tl["event_order"], tl.iterrows())))

table = pd.DataFrame({
    "#": [int(v) for v in tl["event_order"]],
    "Date": [day(v) for v in tl["event_date"]],
    "Event": list(tl["event_type"]),
    "Cycle": [d.label_of(v, "") for v in tl["cycle"]],
    "Regimen": [d.label_of(v, "") for v in tl["regimen_class"]],
    "Protocol": [d.label_of(v, "") for v in tl["protocol"]],
    "Premedication": [words(v) if t != "irae" else "" for v, t in
                      zip(tl["premedication"], tl["event_type"])],
    "Completed": ["" if d.is_null(v) else ("yes" if bool(v) else "no") for v in tl["completed"]],
    "Onset (min)": [d.label_of(v, "") for v in tl["onset_min"]],
    "Term / category": [words(t) if not d.is_null(t) else words(c) if not d.is_null(c) else ""
                        for t, c in zip(tl["term"], tl["category"])],
    "Grade": [d.label_of(v, "") for v in tl["grade"]],
    "Symptoms": [words(v) if t == "reaction" else "" for v, t in
                 zip(tl["symptoms"], tl["event_type"])],
    "Treatment": [words(v) if t != "infusion" else "" for v, t in
                  zip(tl["treatment"], tl["event_type"])],
    "Outcome": [d.label_of(v, "") for v in tl["outcome"]],
    "Role": [d.label_of(v, "") for v in tl["role"]],
    "Rechallenge tier": [d.label_of(v, "") for v in tl["rechallenge_tier"]],
})
st.dataframe(table, hide_index=True, key="table_timeline",
             column_config=d.narrow("#", "Cycle", "Grade", "Completed", "Onset (min)"))
d.download(table, f"timeline-{site_id}-{patient_key}", "timeline")
