"""marts.premedication_effect: reaction rate with and without premedication per cycle, and
the Mantel-Haenszel risk ratio over the cycle strata with its 95% CI from the
Greenland-Robins variance (Greenland & Robins 1985, Biometrics 41:55-68), worked by hand.
"""
from __future__ import annotations

import math

import pytest

from eventkit import build_home, infusion, patient, reaction, rows, write_batch
from safety_ledger.home import Home

Z = 1.959964


def stratum(home: Home, cycle: int, n1: int, a: int, n0: int, c: int) -> None:
    """One batch of cycle-`cycle` infusions, one patient each: n1 premedicated (a of them
    with a reaction) and n0 not premedicated (c with a reaction)."""
    started = f"2025-0{cycle}-10T09:00:00+08:00"
    pts, infs, rxns = [], [], []
    for i in range(n1 + n0):
        premed = i < n1
        reacted = i < a if premed else i - n1 < c
        pts.append(patient(f"P{cycle}-{i}"))
        infs.append(infusion(f"I{cycle}-{i}", f"P{cycle}-{i}", cycle=cycle, started_at=started,
                             premedication=["dexamethasone", "diphenhydramine"] if premed else []))
        if reacted:
            rxns.append(reaction(f"R{cycle}-{i}", f"I{cycle}-{i}"))
    write_batch(home, f"c{cycle}", patients=pts, infusions=infs, reactions=rxns)


def test_mantel_haenszel_risk_ratio_by_hand(tmp_path):
    home = Home(tmp_path / "home")
    #          premedicated   not premedicated
    # cycle    a / n1         c / n0            N
    #   1      1 / 10         4 / 20           30
    #   2      1 / 5          6 / 15           20
    #   3      0 / 4          1 / 6            10
    #   4      1 / 3          - / 0             3   (no comparison: adds 0 to every sum)
    stratum(home, 1, 10, 1, 20, 4)
    stratum(home, 2, 5, 1, 15, 6)
    stratum(home, 3, 4, 0, 6, 1)
    stratum(home, 4, 3, 1, 0, 0)
    got = {r["stratum"]: r for r in rows(build_home(home), "SELECT * FROM marts.premedication_effect")}
    assert list(got) == ["cycle 1", "cycle 2", "cycle 3", "cycle 4", "all cycles"]

    # R_k = a n0 / N:  20/30 = 0.666667,  15/20 = 0.75,  0               sum R = 17/12 = 1.416667
    # S_k = c n1 / N:  40/30 = 1.333333,  30/20 = 1.5,   4/10 = 0.4      sum S = 97/30 = 3.233333
    # RR_MH = (17/12) / (97/30) = 510/1164 = 85/194 = 0.438144
    # P_k = (n1 n0 (a + c) - a c N) / N^2:
    #   (10·20·5 - 1·4·30) / 900 = 880/900 = 0.977778
    #   (5·15·7 - 1·6·20) / 400  = 405/400 = 1.0125
    #   (4·6·1 - 0) / 100        = 24/100  = 0.24                        sum P = 8029/3600 = 2.230278
    # Var(ln RR_MH) = sum P / (sum R · sum S) = 2.230278 / (1.416667 · 3.233333) = 2.230278 / 4.580556
    #               = 8029/16490 = 0.486901;  SE = 0.697783
    # 95% CI = exp(ln 0.438144 -/+ 1.959964 · 0.697783) = exp(-0.825207 -/+ 1.367630)
    #        = exp(-2.192837), exp(0.542423) = 0.111600 to 1.720169
    mh = got["all cycles"]
    assert mh["cycle"] is None and mh["estimate"] == "Mantel-Haenszel over cycles"
    assert mh["risk_ratio"] == pytest.approx(85 / 194)
    assert mh["var_log_rr"] == pytest.approx(8029 / 16490)
    assert mh["rr_ci_low"] == pytest.approx(0.111600, abs=1e-6)
    assert mh["rr_ci_high"] == pytest.approx(1.720169, abs=1e-6)
    assert mh["rr_ci_low"] == pytest.approx(math.exp(math.log(85 / 194) - Z * math.sqrt(8029 / 16490)))
    assert mh["informative_strata"] == 3
    # totals: premedicated 3 of 22, not premedicated 11 of 41; crude RR (3/22)/(11/41) = 0.508264
    assert (mh["premedicated_reaction_infusions"], mh["premedicated_infusions"]) == (3, 22)
    assert (mh["not_premedicated_reaction_infusions"], mh["not_premedicated_infusions"]) == (11, 41)
    assert mh["infusions"] == 63
    assert mh["crude_risk_ratio"] == pytest.approx((3 / 22) / (11 / 41))
    assert mh["premedicated_rate"] == pytest.approx(3 / 22)

    # Each cycle alone (the same formulas with one stratum = the usual log-RR interval):
    # cycle 1: RR = (1/10) / (4/20) = 0.5;  Var = 0.977778 / (0.666667 · 1.333333) = 1.1
    #          (= 1/a - 1/n1 + 1/c - 1/n0 = 1 - 0.1 + 0.25 - 0.05 = 1.1)
    c1 = got["cycle 1"]
    assert (c1["cycle"], c1["estimate"]) == (1, "this cycle")
    assert c1["risk_ratio"] == pytest.approx(0.5) and c1["var_log_rr"] == pytest.approx(1.1)
    assert c1["rr_ci_low"] == pytest.approx(0.5 * math.exp(-Z * math.sqrt(1.1)))
    assert c1["rr_ci_high"] == pytest.approx(0.5 * math.exp(Z * math.sqrt(1.1)))
    assert c1["premedicated_rate"] == pytest.approx(0.1)
    assert c1["not_premedicated_rate"] == pytest.approx(0.2)
    # cycle 2: RR = (1/5) / (6/15) = 0.5; Var = 1.0125 / (0.75 · 1.5) = 0.9
    #          (= 1 - 0.2 + 1/6 - 1/15 = 0.9)
    assert got["cycle 2"]["risk_ratio"] == pytest.approx(0.5)
    assert got["cycle 2"]["var_log_rr"] == pytest.approx(0.9)
    # cycle 3: no premedicated reaction: RR 0, no log interval
    c3 = got["cycle 3"]
    assert c3["risk_ratio"] == 0.0 and c3["rr_ci_low"] is None and c3["rr_ci_high"] is None
    # cycle 4: nobody unpremedicated: no risk ratio, but its rate and Wilson interval
    c4 = got["cycle 4"]
    assert c4["risk_ratio"] is None and c4["rr_ci_low"] is None and c4["informative_strata"] == 0
    assert c4["not_premedicated_infusions"] == 0 and c4["not_premedicated_rate"] is None
    assert c4["not_premedicated_ci_low"] is None
    assert c4["premedicated_rate"] == pytest.approx(1 / 3)
    # Wilson 95% for 1 of 3 (z = 1.959964): centre (1/3 + z²/6) / (1 + z²/3), ...
    p, n = 1 / 3, 3
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n * n)) / (1 + Z**2 / n)
    assert c4["premedicated_ci_low"] == pytest.approx(centre - half)
    assert c4["premedicated_ci_high"] == pytest.approx(centre + half)


def test_no_reaction_without_premedication_leaves_the_ratio_undefined(tmp_path):
    home = Home(tmp_path / "home")
    stratum(home, 1, 4, 2, 6, 0)
    got = {r["stratum"]: r for r in rows(build_home(home), "SELECT * FROM marts.premedication_effect")}
    # sum S = c n1 / N = 0: the ratio would be infinite, so it is NULL, as is its interval
    for key in ("cycle 1", "all cycles"):
        assert got[key]["risk_ratio"] is None and got[key]["rr_ci_low"] is None
        assert got[key]["premedicated_rate"] == pytest.approx(0.5)
        assert got[key]["not_premedicated_rate"] == 0.0


def test_no_infusions_gives_only_the_pooled_row(tmp_path):
    home = Home(tmp_path / "home")
    write_batch(home, "b1", patients=[patient("P1")])
    got = rows(build_home(home), "SELECT * FROM marts.premedication_effect")
    # GROUPING SETS' grand total has a row even over no cycle: 0 infusions, NULL figures
    assert len(got) == 1 and got[0]["stratum"] == "all cycles"
    assert (got[0]["infusions"], got[0]["premedicated_infusions"], got[0]["informative_strata"]) == (0, 0, 0)
    assert got[0]["risk_ratio"] is None and got[0]["premedicated_rate"] is None
