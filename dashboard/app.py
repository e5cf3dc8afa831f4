"""Cadonilimab safety board: `streamlit run dashboard/app.py`.

Reads $SAFETY_LEDGER_HOME/warehouse/safety.duckdb (default ./var) read-only (or an as-of
build of it chosen in the sidebar).  One file
per page under dashboard/views/ (not pages/, a name that would also switch on Streamlit's
legacy pages-directory routing and run a page without this frame); this entrypoint is
the frame around them: navigation, the warehouse's freshness in the sidebar, and the
message shown on every page while there is no warehouse to read.
"""
from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

from dashboard import data as d  # noqa: E402
from dashboard import filters  # noqa: E402

st.set_page_config(page_title="Cadonilimab safety board", page_icon=":material/vaccines:",
                   layout="wide")

PAGES = [
    st.Page("views/overview.py", title="Overview", icon=":material/dashboard:",
            url_path="overview", default=True),
    st.Page("views/reaction_rates.py", title="Reaction rates", icon=":material/bar_chart:",
            url_path="reaction-rates"),
    st.Page("views/rechallenge.py", title="Rechallenge", icon=":material/replay:",
            url_path="rechallenge"),
    st.Page("views/irae_trends.py", title="irAE trends", icon=":material/timeline:",
            url_path="irae-trends"),
    st.Page("views/onset.py", title="Onset and severity", icon=":material/timer:",
            url_path="onset"),
    st.Page("views/sites.py", title="Sites and submissions", icon=":material/domain:",
            url_path="sites"),
    st.Page("views/literature.py", title="Literature", icon=":material/menu_book:",
            url_path="literature"),
    st.Page("views/signals.py", title="Signals and premedication",
            icon=":material/notifications_active:", url_path="signals"),
    st.Page("views/case_timeline.py", title="Case timeline", icon=":material/person_search:",
            url_path="case-timeline"),
]

page = st.navigation(PAGES)
wh = d.warehouse()

with st.sidebar:
    st.caption("Cadonilimab (AK104) infusion-related / hypersensitivity reactions and irAEs")
    if wh.usable:
        try:
            info = d.build_info(wh)
        except d.WarehouseError:
            info = None
        if info:
            as_of = info.get("as_of")
            st.caption(f"Built {d.fmt_time(info.get('built_at'))}  \n"
                       f"As of {d.fmt_time(as_of) if not d.is_null(as_of) else 'build time'}")
    st.caption(f"Warehouse: `{wh.path}`")
    filters.sidebar(wh)

if not wh.usable:
    st.title(page.title)
    st.warning(d.no_warehouse_message(wh), icon=":material/warning:")
else:
    try:
        page.run()
    except d.WarehouseError as e:
        st.error(f"The warehouse at {wh.path} could not be read: {e}. "
                 "It may have been replaced while this page was reading it: reload the page, "
                 "or run `safety-ledger build`.", icon=":material/error:")
