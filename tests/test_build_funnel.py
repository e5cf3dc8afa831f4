"""Warehouse build: reaction_rate_by_site's expected count, observed/expected and funnel.

Every expected figure is worked out by hand from the events written here.
"""
from __future__ import annotations

import pytest

from eventkit import build_home, infusion, patient, reaction, rows, write_batch
from safety_ledger.build import binom_quantile
from safety_ledger.home import Home


def site_batch(home: Home, site: str, n_infusions: int, n_reactions: int) -> None:
    """`n_infusions` cycle-1 cervical infusions, one patient each, the first
    `n_reactions` of them with a grade-1 reaction."""
    write_batch(home, f"{site}-b1", site_id=site,
                patients=[patient(f"P{i}") for i in range(n_infusions)],
                infusions=[infusion(f"I{i}", f"P{i}") for i in range(n_infusions)],
                reactions=[reaction(f"R{i}", f"I{i}") for i in range(n_reactions)])


def test_site_clearly_outside_the_funnel(tmp_path):
    home = Home(tmp_path / "home")
    site_batch(home, "SITE-A", 10, 10)
    site_batch(home, "SITE-B", 10, 0)
    site_batch(home, "SITE-C", 10, 5)
    got = {r["site_id"]: r for r in rows(build_home(home), "SELECT * FROM marts.reaction_rate_by_site")}
    # One stratum (cycle 1, cervical): pooled rate (10 + 0 + 5) / 30 = 0.5.
    # Expected per site = 10 x 0.5 = 5; observed/expected A 10/5 = 2, B 0/5 = 0, C 5/5 = 1.
    # Funnel: Binomial(n = 10, p = 5/10 = 0.5), P(X <= k) = sum C(10, i) / 1024:
    #   P(X <= 0) = 1/1024 = 0.00098 < 0.001,  P(X <= 1) = 11/1024 = 0.0107 >= 0.001  -> low 1
    #   P(X <= 8) = 1013/1024 = 0.98926 < 0.999, P(X <= 9) = 1023/1024 = 0.99902 >= 0.999 -> high 9
    # A: 10 > 9 -> outside (above); B: 0 < 1 -> outside (below); C: 1 <= 5 <= 9 -> inside.
    for site, observed, oe, outside in (("SITE-A", 10, 2.0, True), ("SITE-B", 0, 0.0, True),
                                        ("SITE-C", 5, 1.0, False)):
        r = got[site]
        assert r["reaction_infusions"] == observed
        assert r["expected_reaction_infusions"] == pytest.approx(5.0)
        assert r["observed_to_expected"] == pytest.approx(oe)
        assert (r["funnel_low"], r["funnel_high"]) == (1, 9)
        assert r["outside_funnel"] is outside, site


def test_expected_sums_pooled_rates_of_each_stratum(tmp_path):
    home = Home(tmp_path / "home")
    feb = "2025-01-31T09:00:00+08:00"
    # Site X: XP1 cycles 1 (reaction) and 2; XP2 cycle 1.            (all cervical)
    write_batch(home, "x1", site_id="SITE-X", patients=[patient("XP1"), patient("XP2")],
                infusions=[infusion("XI1", "XP1", cycle=1), infusion("XI2", "XP1", cycle=2, started_at=feb),
                           infusion("XI3", "XP2", cycle=1)],
                reactions=[reaction("XR1", "XI1")])
    # Site Y: YP1 cycles 1 (reaction) and 2; YP2 cycles 1 and 2; YP3 cycle 2 (reaction)
    # (all cervical); YP4 hcc, cycle 1 (reaction).
    write_batch(home, "y1", site_id="SITE-Y",
                patients=[patient("YP1"), patient("YP2"), patient("YP3"), patient("YP4", tumor_type="hcc")],
                infusions=[infusion("YI1", "YP1", cycle=1), infusion("YI2", "YP1", cycle=2, started_at=feb),
                           infusion("YI3", "YP2", cycle=1), infusion("YI4", "YP2", cycle=2, started_at=feb),
                           infusion("YI5", "YP3", cycle=2, started_at=feb),
                           infusion("YI6", "YP4", cycle=1)],
                reactions=[reaction("YR1", "YI1"), reaction("YR5", "YI5"), reaction("YR6", "YI6")])
    path = build_home(home)
    # Strata, pooled over both sites:
    #   (1, cervical): XI1*, XI3, YI1*, YI3 -> 2/4 = 0.5
    #   (2, cervical): XI2, YI2, YI4, YI5*  -> 1/4 = 0.25
    #   (1, hcc):      YI6*                 -> 1/1 = 1.0
    # Expected X = 2 x 0.5 + 1 x 0.25 = 1.25; observed 1 -> O/E 0.8
    # Expected Y = 2 x 0.5 + 3 x 0.25 + 1 x 1.0 = 2.75; observed 3 -> O/E 3/2.75 = 1.0909
    # (4 expected in all = 4 observed, as it must.)
    got = {r["site_id"]: r for r in rows(path, "SELECT * FROM marts.reaction_rate_by_site")}
    assert got["SITE-X"]["expected_reaction_infusions"] == pytest.approx(1.25)
    assert got["SITE-X"]["observed_to_expected"] == pytest.approx(0.8)
    assert got["SITE-Y"]["expected_reaction_infusions"] == pytest.approx(2.75)
    assert got["SITE-Y"]["observed_to_expected"] == pytest.approx(3 / 2.75)
    # X funnel: Binomial(3, 1.25/3 = 5/12).  P(X = 0) = (7/12)^3 = 343/1728 = 0.198 >= 0.001 -> low 0;
    # P(X <= 2) = 1 - (5/12)^3 = 1 - 125/1728 = 0.928 < 0.999 -> high 3.  Observed 1: inside.
    assert (got["SITE-X"]["funnel_low"], got["SITE-X"]["funnel_high"]) == (0, 3)
    assert got["SITE-X"]["outside_funnel"] is False
    # The same data feed the cycle and tumor-type marts; patients = distinct patients:
    #   cycle 1: XI1, XI3, YI1, YI3, YI6 -> 5 infusions, 3 reactions, patients XP1 XP2 YP1 YP2 YP4 = 5
    #   cycle 2: XI2, YI2, YI4, YI5      -> 4 infusions, 1 reaction,  patients XP1 YP1 YP2 YP3 = 4
    #   cervical: 8 infusions, 3 reactions, 5 patients;  hcc: 1 infusion, 1 reaction, 1 patient
    cyc = {r["cycle"]: (r["infusions"], r["reaction_infusions"], r["patients"])
           for r in rows(path, "SELECT * FROM marts.reaction_rate_by_cycle")}
    assert cyc == {1: (5, 3, 5), 2: (4, 1, 4)}
    tum = {r["tumor_type"]: (r["infusions"], r["reaction_infusions"], r["patients"])
           for r in rows(path, "SELECT * FROM marts.reaction_rate_by_tumor_type")}
    assert tum == {"cervical": (8, 3, 5), "hcc": (1, 1, 1)}


def test_binom_quantile_edges():
    # p = 0: all mass at 0; p = 1: all mass at n; a p overshooting 1 by rounding is clamped.
    assert binom_quantile(0.001, 10, 0.0) == 0 and binom_quantile(0.999, 10, 0.0) == 0
    assert binom_quantile(0.001, 10, 1.0) == 10 and binom_quantile(0.999, 10, 1.0 + 1e-12) == 10
    assert binom_quantile(0.999, 10, 0.5) == 9
    assert binom_quantile(0.5, 10, None) is None
