"""The site funnel plot (issue 5, item 2): the 99.8% limit curves against hand-worked
binomial quantiles, and the Sites page drawing the funnel from a warehouse built from
events, with the sites outside their limits named.

Limits (marts-v1, warehouse/README.md): the 0.001 and 0.999 quantiles of Binomial(n, p),
i.e. the smallest k with P(X <= k) >= q (scipy.stats.binom.ppf, the method's reference);
a site is outside when its count is < low or > high.  The curve is drawn in observed/
expected units: k / (n p).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from appkit import open_page
from dashboard import charts
from eventkit import build_home, infusion, patient, reaction, write_batch
from safety_ledger.home import Home



def limits(curve, n):
    r = curve[curve["n"] == n].iloc[0]
    return int(r["low"]), int(r["high"]), float(r["expected"]), float(r["low_ratio"]), float(r["high_ratio"])


def test_funnel_curve_at_p_one_half_by_hand():
    # Binomial(n, 1/2): P(X <= k) = sum_{i<=k} C(n, i) / 2^n.
    #  n = 8:  P(X=0) = 1/256 = 0.0039 >= 0.001 -> low 0;  P(X<=7) = 255/256 = 0.99609 < 0.999 -> high 8
    #  n = 10: P(X=0) = 1/1024 = 0.00098 < 0.001, P(X<=1) = 11/1024 = 0.0107 -> low 1;
    #          P(X<=8) = 1013/1024 = 0.98926, P(X<=9) = 1023/1024 = 0.99902 -> high 9
    #  n = 11: P(X=0) = 1/2048 = 0.00049 < 0.001, P(X<=1) = 12/2048 = 0.0059 -> low 1;
    #          P(X<=9) = 2036/2048 = 0.99414, P(X<=10) = 2047/2048 = 0.99951 -> high 10
    # In O/E units (E = n/2): n 8: 0/4, 8/4 = 2;  n 10: 1/5 = 0.2, 9/5 = 1.8;
    #                         n 11: 1/5.5 = 0.181818, 10/5.5 = 1.818182
    curve = charts.funnel_curve(0.5, 4.0, 5.5)
    assert list(curve["n"]) == [8, 9, 10, 11]  # E from 4 to 5.5 in steps of p = 0.5
    assert limits(curve, 8) == (0, 8, 4.0, 0.0, 2.0)
    assert limits(curve, 10) == (1, 9, 5.0, pytest.approx(0.2), pytest.approx(1.8))
    assert limits(curve, 11) == (1, 10, 5.5, pytest.approx(1 / 5.5), pytest.approx(10 / 5.5))


def test_funnel_curve_at_p_one_tenth_by_hand():
    # Binomial(20, 0.1), E = 2.  0.9^13..0.9^20 = .254187 .228768 .205891 .185302 .166772
    # .150095 .135085 .121577.  P(X = k) = C(20, k) 0.1^k 0.9^(20-k):
    #   k: 0 .121577  1 .270170  2 .285180  3 .190120  4 .089779  5 .031921  6 .008867  7 .001970
    #   P(X <= k): .121577 .391747 .676927 .867047 .956826 .988747 .997614 .999584
    # low: P(X = 0) = 0.1216 >= 0.001 -> 0;  high: first cumulative >= 0.999 is k = 7.
    # O/E: 0 / 2 = 0 and 7 / 2 = 3.5.
    curve = charts.funnel_curve(0.1, 2.0, 2.0)
    assert limits(curve, 20) == (0, 7, pytest.approx(2.0), 0.0, pytest.approx(3.5))


def test_funnel_curve_edges_and_grid():
    assert charts.funnel_curve(0.0, 1, 5).empty      # no pooled rate: no funnel
    assert charts.funnel_curve(1.0, 1, 5).empty
    assert charts.funnel_curve(None, 1, 5).empty
    # a wide range is drawn on a geometric grid of at most `points` integer n
    curve = charts.funnel_curve(0.02, 0.1, 2000.0, points=200)
    assert len(curve) <= 200 and curve["n"].is_monotonic_increasing
    assert curve["n"].iloc[0] == 5 and curve["n"].iloc[-1] == 100_000
    # the limits in O/E narrow towards 1 as the expected count grows
    assert curve["high_ratio"].iloc[-1] < 1.1 < curve["high_ratio"].iloc[0]


# ---------------------------------------------------------------------------- the page


def site_batch(home: Home, site: str, n_infusions: int, n_reactions: int) -> None:
    write_batch(home, f"{site}-b1", site_id=site,
                patients=[patient(f"P{i}") for i in range(n_infusions)],
                infusions=[infusion(f"I{i}", f"P{i}") for i in range(n_infusions)],
                reactions=[reaction(f"R{i}", f"I{i}") for i in range(n_reactions)])


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SAFETY_LEDGER_HOME", str(tmp_path))
    return tmp_path


def funnel_spec(at: AppTest):
    """The funnel chart's layers and their data frames, by mark type."""
    hits = []
    for c in at.get("vega_lite_chart"):
        spec = json.loads(c.proto.spec)
        data = {ds.name: pa.ipc.open_stream(ds.data.data).read_all().to_pandas()
                for ds in c.proto.datasets}
        layers = spec.get("layer", [])
        titles = [layer.get("encoding", {}).get("y", {}).get("axis", {}).get("title")
                  for layer in layers]
        if "Observed / expected" in titles:
            hits.append([(layer["mark"]["type"], data[layer["data"]["name"]]) for layer in layers])
    assert len(hits) == 1, f"{len(hits)} funnel charts"
    return hits[0]


def test_sites_page_draws_the_funnel_and_names_the_sites_outside(home):
    # Three sites of 10 cycle-1 cervical infusions: A 10 reactions, B 0, C 5.  One stratum,
    # pooled rate 15/30 = 0.5, so each site expects 5 and its limits are Binomial(10, 0.5):
    # 1 and 9 (worked above).  A 10 > 9 and B 0 < 1 are outside; C (5) is inside.
    site_batch(Home(home), "SITE-A", 10, 10)
    site_batch(Home(home), "SITE-B", 10, 0)
    site_batch(Home(home), "SITE-C", 10, 5)
    build_home(Home(home))
    at = open_page("views/sites.py")
    layers = funnel_spec(at)
    marks = [m for m, _ in layers]
    assert marks == ["line", "rule", "rule", "point", "text"]
    curve = layers[0][1]
    # The curves span 0.8 x 5 = 4 to 1.1 x 5 = 5.5 expected, n = 8..11 at p = 0.5 (above)
    upper = curve[curve["limit"] == "upper 99.8% limit"].set_index("n")["ratio"]
    lower = curve[curve["limit"] == "lower 99.8% limit"].set_index("n")["ratio"]
    assert sorted(upper.index) == [8, 9, 10, 11]
    assert (lower[10], upper[10]) == (pytest.approx(0.2), pytest.approx(1.8))
    assert (lower[8], upper[8]) == (0.0, 2.0)
    # Sites: O/E A 10/5 = 2, B 0, C 1; own limits 1/5 = 0.2 and 9/5 = 1.8
    dots = layers[3][1].set_index("site")
    assert dict(dots["ratio"]) == {"SITE-A": 2.0, "SITE-B": 0.0, "SITE-C": 1.0}
    assert list(dots["low_ratio"]) == pytest.approx([0.2] * 3)
    assert list(dots["high_ratio"]) == pytest.approx([1.8] * 3)
    assert dict(dots["funnel"]) == {"SITE-A": "outside funnel", "SITE-B": "outside funnel",
                                    "SITE-C": "within funnel"}
    # names drawn: the two sites outside, not C
    assert sorted(layers[4][1]["site"]) == ["SITE-A", "SITE-B"]
    text = "\n".join(str(c.value) for c in at.caption)
    assert "pooled rate p = 50.0% (15 of 30 infusions)" in text
    assert "Sites outside their limits are named (SITE-A, SITE-B)" in text
    assert "Spiegelhalter DJ. Funnel plots for comparing institutional performance" in text
    # the table: limits as counts, and O/E with its interval.  C: Wilson 5 of 10 =
    # 0.5 -/+ 1.959964 sqrt(0.025 + 3.841459/400) / 1.384146 = 0.5 -/+ 0.263406, times
    # n/E = 10/5 = 2 -> 0.47-1.53
    table = next(df.value for df in at.dataframe if "Funnel" in df.value.columns)
    c = table[table["Site"] == "SITE-C"].iloc[0]
    assert (c["Expected"], c["Observed/expected"], c["O/E 95% CI"], c["99.8% limits"]) == (
        "5.0", "1.00", "0.47–1.53", "1–9")


def test_no_site_outside_names_none(home):
    # Two identical sites, 10 infusions, 5 reactions each: O/E 1, both inside.
    site_batch(Home(home), "SITE-A", 10, 5)
    site_batch(Home(home), "SITE-B", 10, 5)
    build_home(Home(home))
    at = open_page("views/sites.py")
    layers = funnel_spec(at)
    assert layers[4][1].empty
    assert "Sites outside their limits are named (none)" in "\n".join(
        str(c.value) for c in at.caption)
