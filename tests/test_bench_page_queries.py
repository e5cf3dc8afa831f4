"""`make bench` times every dashboard page's queries, read from the pages' own sources
(bench/steps.py page_queries). A page written in a way that reader does not understand
would only fail in the middle of a long bench run; this finds it in `make test`."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import steps  # noqa: E402


def _page_titles() -> list[str]:
    """The title= of every st.Page(...) in dashboard/app.py."""
    tree = ast.parse((ROOT / "dashboard" / "app.py").read_text())
    return [kw.value.value for node in ast.walk(tree) if isinstance(node, ast.Call)
            and getattr(node.func, "attr", None) == "Page"
            for kw in node.keywords if kw.arg == "title"]


def test_the_bench_reads_the_queries_of_every_page():
    pages = dict(steps.page_queries())
    assert list(pages) == _page_titles()
    for title, queries in pages.items():
        own = [label for label, _sql, _params in queries if not label.startswith("frame: ")]
        assert own, f"{title}: the bench found no query of the page itself"
    # multi-line literals are read whole (the Rechallenge page's Table 4 query)
    rechallenge = [sql for _label, sql, _p in pages["Rechallenge"] if "ref_seed_table4" in sql]
    assert rechallenge and rechallenge[0].rstrip().endswith("order by case_no")
