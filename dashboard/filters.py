"""The board's sidebar choices, and the figures recomputed under them.

`current()` is the one way a page reads the choices: the board view (the live warehouse or
an as-of build), a site, tumor types, regimen classes and a date range.  `sidebar(wh)`
draws the widgets (dashboard/app.py calls it on every page).

The marts are aggregated by one dimension each (reaction_rate_by_site has no tumor type,
rechallenge_outcomes no site, ...), so a filtered figure cannot be read from them.  When a
filter is set, the pages recompute their figures from the per-infusion and per-patient core
tables the warehouse publishes (core.infusion_outcomes, core.patient_rechallenge,
core.current_iraes, core.current_patients) with the same definitions as the marts
(transforms/) and the Wilson macros stored in the file (transforms/macros.sql); with no
filter they read the marts as before.  What each filter means:

- site: the infusion's (or patient's) site;
- tumor types: the patient's current tumor type;
- regimen classes: the infusion's regimen class (for rechallenge: the index infusion's);
- date range: the infusion's local start date (started_local_date; for rechallenge: the
  index infusion's; for irAEs: onset_date), both ends included.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data as d

SITE_KEY = "filter_site"
TUMOR_KEY = "filter_tumor_types"
REGIMEN_KEY = "filter_regimen_classes"
DATES_KEY = "filter_dates"
ALL_SITES = "All sites"

OPTIONS_SQL = "select sites, tumor_types, regimen_classes, first_day, last_day from core.filter_options"


@dataclass(frozen=True)
class Filters:
    view: str = d.LIVE                     # d.LIVE or the ISO board date of an as-of build
    site: str | None = None
    tumor_types: tuple[str, ...] = field(default_factory=tuple)
    regimen_classes: tuple[str, ...] = field(default_factory=tuple)
    date_from: date | None = None
    date_to: date | None = None

    @property
    def active(self) -> bool:
        """True when any filter narrows the data (the board view is not a filter)."""
        return bool(self.site or self.tumor_types or self.regimen_classes
                    or self.date_from or self.date_to)

    def describe(self, applies: tuple[str, ...] = ("site", "tumor", "regimen", "dates")) -> str:
        """'Site SITE-A; tumor types cervical, hcc; ...' for the filters in `applies`."""
        parts = []
        if "site" in applies and self.site:
            parts.append(f"site {self.site}")
        if "tumor" in applies and self.tumor_types:
            parts.append("tumor types " + ", ".join(self.tumor_types))
        if "regimen" in applies and self.regimen_classes:
            parts.append("regimen classes " + ", ".join(self.regimen_classes))
        if "dates" in applies and (self.date_from or self.date_to):
            parts.append(f"dates {self.date_from or '…'} to {self.date_to or '…'}")
        return "; ".join(parts)


def current() -> Filters:
    """The filters chosen in the sidebar (defaults when none): the one function every page
    reads them through."""
    ss = st.session_state
    dates = ss.get(DATES_KEY) or ()
    if isinstance(dates, date):
        dates = (dates,)
    dates = tuple(dates)
    site = ss.get(SITE_KEY)
    return Filters(
        view=d.selected_view(),
        site=None if site in (None, ALL_SITES) else str(site),
        tumor_types=tuple(ss.get(TUMOR_KEY) or ()),
        regimen_classes=tuple(ss.get(REGIMEN_KEY) or ()),
        date_from=dates[0] if len(dates) >= 1 else None,
        date_to=dates[1] if len(dates) >= 2 else (dates[0] if len(dates) == 1 else None),
    )


def conditions(f: Filters, alias: str, *, date_column: str = "started_local_date",
               regimen: bool = True) -> tuple[str, list[Any]]:
    """SQL conditions (joined by AND, 'true' when none) and their parameters, over a table
    aliased `alias` with site_id, tumor_type, regimen_class and `date_column`."""
    conds: list[str] = []
    params: list[Any] = []
    if f.site:
        conds.append(f"{alias}.site_id = ?")
        params.append(f.site)
    if f.tumor_types:
        conds.append(f"list_contains(?::VARCHAR[], {alias}.tumor_type)")
        params.append(list(f.tumor_types))
    if regimen and f.regimen_classes:
        conds.append(f"list_contains(?::VARCHAR[], {alias}.regimen_class)")
        params.append(list(f.regimen_classes))
    if f.date_from:
        conds.append(f"{alias}.{date_column} >= ?")
        params.append(f.date_from)
    if f.date_to:
        conds.append(f"{alias}.{date_column} <= ?")
        params.append(f.date_to)
    return (" AND ".join(conds) or "true"), params


# ---------------------------------------------------------------------------- queries


def totals_sql(f: Filters) -> tuple[str, list[Any]]:
    where, params = conditions(f, "o")
    return ("select count(*) as infusions, "
            "count(*) filter (where o.has_reaction) as reaction_infusions, "
            "count(*) filter (where o.grade3plus) as grade3plus_infusions, "
            "count(distinct (o.site_id, o.patient_key)) as patients "
            f"from core.infusion_outcomes as o where {where}"), params


def rates_by_sql(f: Filters, key: str) -> tuple[str, list[Any]]:
    """Infusions, reaction and grade 3+ infusions and patients per value of `key` (cycle,
    tumor_type or regimen_class) over the filtered infusions: the counts of the
    reaction_rate_by_* marts (their rates and intervals follow from the counts)."""
    assert key in ("cycle", "tumor_type", "regimen_class")
    where, params = conditions(f, "o")
    return (f"select o.{key}, count(*) as infusions, "
            "count(*) filter (where o.has_reaction) as reaction_infusions, "
            "count(*) filter (where o.grade3plus) as grade3plus_infusions, "
            "count(distinct (o.site_id, o.patient_key)) as patients "
            f"from core.infusion_outcomes as o where {where} group by o.{key}"), params


def _rechallenge_from(f: Filters) -> tuple[str, list[Any]]:
    """FROM and WHERE over core.patient_rechallenge (x, which carries the patient's tumor
    type) and, only when the regimen or date filter needs it, the index infusion's row of
    core.infusion_outcomes (o): that join is the costly part."""
    sql = "from core.patient_rechallenge as x"
    conds: list[str] = []
    params: list[Any] = []
    if f.regimen_classes or f.date_from or f.date_to:
        sql += (" join core.infusion_outcomes as o on o.site_id = x.site_id "
                "and o.infusion_ref = x.index_infusion_ref")
        c, params = conditions(Filters(regimen_classes=f.regimen_classes, date_from=f.date_from,
                                       date_to=f.date_to), "o")
        conds.append(c)
    c, p2 = conditions(Filters(site=f.site, tumor_types=f.tumor_types), "x")
    conds.append(c)
    return f"{sql} where {' AND '.join(conds)}", params + p2


def rechallenge_sql(f: Filters) -> tuple[str, list[Any]]:
    """marts.rechallenge_outcomes recomputed over the patients whose index infusion
    passes the filters (same grouping, counts and Wilson interval)."""
    frm, params = _rechallenge_from(f)
    success = "count(*) filter (where x.rechallenge_outcome in ('tolerated', 'breakthrough'))"
    rechallenged = "count(*) filter (where x.rechallenged)"
    return ("select x.protocol, x.premedicated, x.index_grade_band, "
            "count(*) as patients_with_index_reaction, "
            f"{rechallenged} as rechallenged, "
            "count(*) filter (where x.rechallenge_outcome = 'tolerated') as tolerated, "
            "count(*) filter (where x.rechallenge_outcome = 'breakthrough') as breakthrough, "
            "count(*) filter (where x.rechallenge_outcome = 'failed') as failed, "
            f"rate({success}, {rechallenged}) as success_rate, "
            f"wilson_low({success}, {rechallenged}) as ci_low, "
            f"wilson_high({success}, {rechallenged}) as ci_high "
            f"{frm} group by x.protocol, x.premedicated, x.index_grade_band "
            "order by x.protocol nulls last, x.premedicated nulls last, x.index_grade_band"), params


def rechallenge_patients_sql(f: Filters, limit: int | None = None) -> tuple[str, list[Any]]:
    """One row per patient with an index reaction (pseudonym only) whose index infusion
    passes the filters, earliest index reaction first."""
    frm, params = _rechallenge_from(f)
    return ("select x.site_id, x.patient_key, x.tumor_type, x.index_cycle, "
            "x.index_started_at, x.index_max_grade, x.index_grade_band, x.rechallenged, "
            "x.rechallenge_cycle, x.protocol, x.premedicated, x.rechallenge_outcome "
            f"{frm} order by x.index_started_at, x.site_id, x.patient_key"
            + (f" limit {int(limit)}" if limit else "")), params


def irae_monthly_sql(f: Filters) -> tuple[str, list[Any]]:
    """marts.irae_monthly recomputed under site, tumor type and date range (regimen class
    does not apply: an irAE belongs to the patient, not to an infusion)."""
    ev_where, ev_params = conditions(f, "e", date_column="onset_date", regimen=False)
    tr_where, tr_params = conditions(f, "o", regimen=False)
    return ("with treated as (select date_trunc('month', o.started_local_date)::DATE as month, "
            "count(distinct (o.site_id, o.patient_key)) as treated_patients "
            f"from core.infusion_outcomes as o where {tr_where} group by 1), "
            "ev as (select e.*, p.tumor_type from core.current_iraes as e "
            "join core.current_patients as p on p.site_id = e.site_id "
            "and p.patient_key = e.patient_key), "
            "events as (select e.onset_month as month, e.category, count(*) as events, "
            "count(*) filter (where e.grade >= 3) as grade3plus_events, "
            "count(distinct (e.site_id, e.patient_key)) as patients "
            f"from ev as e where {ev_where} group by 1, 2) "
            "select e.month, e.category, e.events, e.grade3plus_events, e.patients, "
            "coalesce(t.treated_patients, 0) as treated_patients "
            "from events as e left join treated as t using (month) "
            "order by e.month, e.category"), tr_params + ev_params


TIMELINE_LIST_LIMIT = 2000


def timeline_patients_sql(f: Filters) -> tuple[str, list[Any]]:
    """The patients the Case timeline page offers: those with an index reaction whose
    index infusion passes the filters (as on the Rechallenge page), earliest first, at most
    TIMELINE_LIST_LIMIT; any other patient is reached by its pseudonym."""
    return rechallenge_patients_sql(f, limit=TIMELINE_LIST_LIMIT)


def patient_sql(site_id: str, patient_key: str) -> tuple[str, list[Any]]:
    return ("select site_id, patient_key, tumor_type from core.current_patients "
            "where site_id = ? and patient_key = ?"), [site_id, patient_key]


PATIENT_SEARCH_SQL = ("select site_id, patient_key, tumor_type from core.current_patients "
                      "where patient_key = ? order by site_id")


TIMELINE_SQL = ("select * from marts.patient_timeline where site_id = ? and patient_key = ? "
                "order by event_order")


def query(wh: d.Warehouse, built: tuple[str, list[Any]]) -> pd.DataFrame:
    sql, params = built
    return wh.sql(sql, params)


# ---------------------------------------------------------------------------- sidebar


def _keep(key: str, allowed: list[str]) -> None:
    """Drop chosen values the current warehouse no longer has (e.g. after switching to an
    earlier board date), so the widget never holds an option it does not offer."""
    v = st.session_state.get(key)
    if isinstance(v, list):
        kept = [x for x in v if x in allowed]
        if kept != v:
            st.session_state[key] = kept
    elif v is not None and v not in allowed:
        del st.session_state[key]


def _board_view() -> None:
    views = [d.LIVE] + [v.isoformat() for v in d.board_views()]
    _keep(d.BOARD_VIEW_KEY, views)
    st.selectbox("Board view", views, key=d.BOARD_VIEW_KEY,
                 format_func=lambda v: "Live (every ingested event)" if v == d.LIVE
                 else f"As of {v} (end of day, UTC)",
                 help="An as-of warehouse holds only the events ingested by the end of that "
                      "day: the board's view on that date, reproduced.")
    with st.expander("Build an as-of view", expanded=False):
        day = st.date_input("Board date", value=None, key="as_of_date",
                            help="Builds <home>/warehouse/as_of/<date>.duckdb from the events "
                                 "ingested by the end of that day (UTC). The live warehouse "
                                 "is not touched.")
        if st.button("Build", key="as_of_build", disabled=day is None):
            try:
                with st.spinner(f"Building the warehouse as of {day} …"):
                    path = d.build_as_of(day)
            except Exception as e:  # shown, never a traceback on the board
                st.error(f"The as-of build failed: {type(e).__name__}: {e}")
            else:
                st.session_state[d.PENDING_VIEW_KEY] = day.isoformat()
                st.success(f"Built {path.name}")
                st.rerun()


def sidebar(wh: d.Warehouse) -> None:
    """The board view and the filters, in the sidebar (call inside `with st.sidebar`)."""
    _board_view()
    if not wh.usable:
        return
    if not wh.has_core("filter_options"):
        st.caption("Filters need `core.filter_options`: run `safety-ledger build` to "
                   "rebuild the warehouse with the current transforms.")
        return
    try:
        opt = wh.sql(OPTIONS_SQL).iloc[0]
    except d.WarehouseError:
        return
    def listed(v) -> list[str]:  # NULL (no infusion at all) -> no option
        return [] if v is None or (not hasattr(v, "__len__") and d.is_null(v)) else [str(x) for x in v]

    sites, tumors, regimens = (listed(opt["sites"]), listed(opt["tumor_types"]),
                               listed(opt["regimen_classes"]))
    st.markdown("**Filters**")
    _keep(SITE_KEY, [ALL_SITES] + sites)
    st.selectbox("Site", [ALL_SITES] + sites, key=SITE_KEY)
    _keep(TUMOR_KEY, tumors)
    st.multiselect("Tumor types", tumors, key=TUMOR_KEY, placeholder="All tumor types")
    _keep(REGIMEN_KEY, regimens)
    st.multiselect("Regimen classes", regimens, key=REGIMEN_KEY,
                   placeholder="All regimen classes")
    lo = None if d.is_null(opt["first_day"]) else pd.Timestamp(opt["first_day"]).date()
    hi = None if d.is_null(opt["last_day"]) else pd.Timestamp(opt["last_day"]).date()
    st.date_input("Date range", value=[], min_value=lo, max_value=hi, key=DATES_KEY,
                  help="Infusion start date (local to the site); irAE onset date; for "
                       "rechallenge, the index infusion's date. Both ends included.")
    st.caption("Filters apply to Overview, Reaction rates, Rechallenge, irAE trends, Signals "
               "and Case timeline; each page says which apply to which figure.")


def banner(f: Filters, applies: tuple[str, ...], note: str = "") -> None:
    """One line on a page: which build it shows and which filters its figures use."""
    chosen = f.describe(applies)
    ignored = f.describe(tuple(a for a in ("site", "tumor", "regimen", "dates")
                               if a not in applies))
    view = ("live warehouse" if f.view == d.LIVE
            else f"as-of build for {f.view} (events ingested by the end of that day, UTC)")
    text = f"Showing the {view}."
    if chosen:
        text += f" Filtered: {chosen}."
    if ignored:
        text += f" Not applied on this page: {ignored}."
    if note:
        text += " " + note
    st.caption(text)


def filter_strata(df: pd.DataFrame, f: Filters) -> pd.DataFrame:
    """Rows of a per-stratum mart (stratum_type, stratum) kept under the filters: a site
    stratum when the site filter names it (or is unset), a tumor-type stratum when it is
    among the chosen tumor types, a regimen-class stratum likewise.  A stratum's figures
    are its own over every infusion of the stratum: the filters choose strata, they do
    not recompute them (a sequential test runs over the stratum's whole history)."""
    if df is None or df.empty:
        return df
    keep = []
    for t, s in zip(df["stratum_type"].astype(str), df["stratum"].astype(str)):
        if t == "site_id" and f.site:
            keep.append(s == f.site)
        elif t == "tumor_type" and f.tumor_types:
            keep.append(s in f.tumor_types)
        elif t == "regimen_class" and f.regimen_classes:
            keep.append(s in f.regimen_classes)
        else:
            keep.append(True)
    return df[keep]


def can_filter(wh: d.Warehouse, *core_tables: str) -> bool:
    return all(wh.has_core(t) for t in core_tables)
