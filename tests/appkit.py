"""What the dashboard tests share: the app opened on a page under Streamlit's AppTest (with
no exception), and its text and tables read back."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"


def open_page(page: str | None = None, timeout: int = 60) -> AppTest:
    """The app run once, then switched to `page` (a file under dashboard/, e.g.
    "views/sites.py"; None stays on the default page) and run again."""
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    """Every piece of text on the page, one per line."""
    out: list[str] = []
    for kind in ("title", "subheader", "markdown", "caption", "info", "warning", "error",
                 "success"):
        out += [str(e.value) for e in getattr(at, kind)]
    for m in at.metric:
        out += [str(m.label), str(m.value)]
    return "\n".join(out)


def frame(at: AppTest, *columns: str):
    """The one table on the page that has all these columns."""
    hits = [df.value for df in at.dataframe if set(columns) <= set(df.value.columns)]
    assert len(hits) == 1, f"{len(hits)} dataframes with columns {columns}"
    return hits[0]
