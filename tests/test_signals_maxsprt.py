"""marts.signals: the binomial MaxSPRT (Kulldorff et al. 2011, Sequential Analysis 30:58-78),
worked by hand on tiny sequences, and its critical value checked against hand enumeration,
a brute-force dynamic programme and the published Poisson value it tends to.

LLR(c, n) = c ln(c / (n p0)) + (n - c) ln((n - c) / (n (1 - p0)))  when c > n p0, else 0;
a signal at the first infusion n <= N with c >= M = 4 reactions and LLR >= threshold.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from eventkit import build_home, infusion, one, patient, reaction, rows, write_batch
from safety_ledger.home import Home
from safety_ledger.signals import (binomial_llr, maxsprt_critical_value,
                                   maxsprt_signal_probability)

LN = math.log


def test_llr_by_hand():
    # p0 = 0.1
    assert binomial_llr(1, 1, 0.1) == pytest.approx(LN(10))                 # 2.302585
    assert binomial_llr(2, 2, 0.1) == pytest.approx(2 * LN(10))             # 4.605170
    # c = 3, n = 4: 3 ln(3 / 0.4) + 1 ln(1 / 3.6) = 3 x 2.014903 - 1.280934 = 4.763775
    assert binomial_llr(3, 4, 0.1) == pytest.approx(4.763775, abs=1e-6)
    # c = 4, n = 5: 4 ln(4 / 0.5) + 1 ln(1 / 4.5) = 4 x 2.079442 - 1.504077 = 6.813689
    assert binomial_llr(4, 5, 0.1) == pytest.approx(6.813689, abs=1e-6)
    # one-sided: no more reactions than expected gives 0
    assert binomial_llr(1, 10, 0.1) == 0.0 and binomial_llr(0, 10, 0.1) == 0.0
    assert binomial_llr(3, 4, 0.0) == 0.0 and binomial_llr(3, 4, 1.0) == 0.0


def test_critical_value_by_hand_on_three_infusions():
    # p0 = 1/2, N = 3 infusions, M = 1.  The LLRs a path can reach:
    #   LLR(1, 1) = ln 2 = 0.693147   LLR(2, 2) = 2 ln 2 = 1.386294   LLR(3, 3) = 3 ln 2 = 2.079442
    #   LLR(2, 3) = 2 ln(2 / 1.5) + ln(1 / 1.5) = 0.575364 - 0.405465 = 0.169899
    # cv = 1:   signal iff the first two infusions both react (LLR(2,2) >= 1; every other
    #           path stays below 1)                                  -> P = 1/4
    # cv = 1.5: only LLR(3, 3) >= 1.5: all three react               -> P = 1/8
    # cv = 2.1: nothing reaches it                                   -> P = 0
    assert maxsprt_signal_probability(1.0, 0.5, 3) == pytest.approx(1 / 4)
    assert maxsprt_signal_probability(1.5, 0.5, 3) == pytest.approx(1 / 8)
    assert maxsprt_signal_probability(2.1, 0.5, 3) == pytest.approx(0.0)
    # Power at RR 1.6 (p = 0.8), cv = 1: 0.8 x 0.8 = 0.64.
    assert maxsprt_signal_probability(1.0, 0.5, 3, relative_risk=1.6) == pytest.approx(0.64)
    # alpha = 0.2: P = 1/4 > 0.2 up to cv = 2 ln 2, then 1/8: the smallest cv is just above
    # 2 ln 2 = 1.3862944, rounded up to 6 decimals.
    assert maxsprt_critical_value(0.5, 3, 0.2, 1) == 1.386295
    # With M = 3 the first two reactions cannot signal: P(cv = 1) = 1/8.
    assert maxsprt_signal_probability(1.0, 0.5, 3, min_events=3) == pytest.approx(1 / 8)


def _brute_force(cv: float, p0: float, n_max: int, m: int) -> float:
    """P(signal) by stepping through every infusion: P(c reactions, no signal yet)."""
    alive = np.zeros(n_max + 2)
    alive[0] = 1.0
    absorbed = 0.0
    for n in range(1, n_max + 1):
        new = alive * (1 - p0)
        new[1:] += alive[:-1] * p0
        alive = new
        for c in range(max(m, 1), n + 1):
            if binomial_llr(c, n, p0) >= cv:  # LLR grows with c: every count above too
                absorbed += alive[c:].sum()
                alive[c:] = 0.0
                break
    return absorbed


@pytest.mark.parametrize("p0, n_max, m", [(0.1, 200, 1), (0.05, 300, 4), (0.3, 120, 4)])
def test_exact_alpha_matches_a_brute_force_walk(p0, n_max, m):
    cv = maxsprt_critical_value(p0, n_max, 0.05, m)
    alpha = maxsprt_signal_probability(cv, p0, n_max, 1.0, m)
    assert alpha == pytest.approx(_brute_force(cv, p0, n_max, m), abs=1e-12)
    assert alpha <= 0.05
    # the smallest such cv: a little lower and alpha exceeds 0.05
    assert maxsprt_signal_probability(cv - 1e-5, p0, n_max, 1.0, m) > 0.05


def test_tends_to_the_published_poisson_critical_value():
    # A rare event watched over 10 expected events: the binomial MaxSPRT tends to the
    # Poisson one, whose critical value for alpha 0.05 and 10 expected events is 3.467952
    # (R package Sequential, CV.Poisson(SampleSize = 10); Kulldorff et al. 2011).
    assert maxsprt_critical_value(1e-4, 100_000, 0.05, 1) == pytest.approx(3.467952, abs=2e-3)
    assert maxsprt_critical_value(0.5, 0, 0.05, 4) is None
    assert maxsprt_critical_value(0.0, 100, 0.05, 4) is None
    assert maxsprt_critical_value(1.0, 100, 0.05, 4) is None


def _quiet_site_then_reacting_site(tmp_path, quiet: int, reacting: int, reactions_on: tuple[int, ...]):
    """Build a home of two sites: SITE-B's `quiet` infusions in January (one patient each,
    on 1-28 January at 08:00, then from 1 January again at 09:00), none with a reaction; then SITE-A's `reacting` infusions
    on 1, 2, ... February at 09:00 (one patient each), with a reaction on those numbered
    (0-based) in `reactions_on`. Returns the warehouse path."""
    home = Home(tmp_path / "home")
    write_batch(home, "b1", site_id="SITE-B",
                patients=[patient(f"B{i}", first_dose_date="2025-01-01") for i in range(quiet)],
                infusions=[infusion(f"BI{i:02d}", f"B{i}",
                                    started_at=f"2025-01-{1 + i % 28:02d}T{8 + i // 28:02d}:00:00+08:00")
                           for i in range(quiet)])
    write_batch(home, "a1", site_id="SITE-A",
                patients=[patient(f"A{i}", first_dose_date="2025-01-01") for i in range(reacting)],
                infusions=[infusion(f"AI{i}", f"A{i}", started_at=f"2025-02-{i + 1:02d}T09:00:00+08:00")
                           for i in range(reacting)],
                reactions=[reaction(f"AR{i}", f"AI{i}") for i in reactions_on])
    return build_home(home)


def test_worked_example_through_the_build(tmp_path):
    # SITE-B: 35 infusions in January, none with a reaction.
    # SITE-A: 5 infusions in February; reactions on the 1st, 2nd, 3rd and 5th.
    path = _quiet_site_then_reacting_site(tmp_path, quiet=35, reacting=5, reactions_on=(0, 1, 2, 4))

    # Baseline = pooled program rate = 4 / 40 = 0.1; N = floor(100 / 0.1) = 1000; M = 4.
    design = one(path, "SELECT * FROM core.signal_design")
    assert design["baseline"] == pytest.approx(0.1)
    assert (design["max_infusions"], design["min_events"], design["alpha"]) == (1000, 4, 0.05)
    threshold = maxsprt_critical_value(0.1, 1000, 0.05, 4)
    assert design["critical_value"] == pytest.approx(threshold)
    assert 3.0 < threshold < 4.5  # 3.626129
    assert design["attained_alpha"] <= 0.05

    # SITE-A's path, by hand (p0 = 0.1):
    #   n=1 c=1: ln(1/0.1)                                   = 2.302585
    #   n=2 c=2: 2 ln(2/0.2)                                 = 4.605170  (c < 4: no signal)
    #   n=3 c=3: 3 ln(3/0.3)                                 = 6.907755  (c < 4: no signal)
    #   n=4 c=3: 3 ln(3/0.4) + ln(1/(4 x 0.9)) = 6.044709 - 1.280934 = 4.763775  (falls)
    #   n=5 c=4: 4 ln(4/0.5) + ln(1/(5 x 0.9)) = 8.317766 - 1.504077 = 6.813689  >= 3.63: signal
    # core.signal_paths keeps the infusions with a reaction (the LLR only falls in between).
    path_a = rows(path, "SELECT infusion_index, observed, infusion_ref, llr, crosses "
                        "FROM core.signal_paths WHERE stratum_type = 'site_id' "
                        "AND stratum = 'SITE-A' ORDER BY infusion_index")
    assert [(r["infusion_index"], r["observed"], r["infusion_ref"]) for r in path_a] == [
        (1, 1, "AI0"), (2, 2, "AI1"), (3, 3, "AI2"), (5, 4, "AI4")]
    assert [r["llr"] for r in path_a] == pytest.approx(
        [2.302585, 4.605170, 6.907755, 6.813689], abs=1e-6)
    assert [r["crosses"] for r in path_a] == [False, False, False, True]
    # In the whole-program strata A's reactions are infusions 36, 37, 38 and 40 of 40:
    # c <= n x 0.1 at each (1 <= 3.6, 2 <= 3.7, 3 <= 3.8, 4 <= 4.0), so LLR = 0.
    whole = rows(path, "SELECT infusion_index, observed, llr FROM core.signal_paths "
                       "WHERE stratum = 'cervical' ORDER BY infusion_index")
    assert [(r["infusion_index"], r["observed"], r["llr"]) for r in whole] == [
        (36, 1, 0.0), (37, 2, 0.0), (38, 3, 0.0), (40, 4, 0.0)]

    got = {(r["stratum_type"], r["stratum"]): r for r in rows(path, "SELECT * FROM marts.signals")}
    a = got[("site_id", "SITE-A")]
    assert (a["status"], a["signalled_at_infusion"], a["observed"], a["infusions"]) == ("signal", 5, 4, 5)
    assert a["expected"] == pytest.approx(0.5)                       # 5 x 0.1
    assert a["statistic"] == pytest.approx(6.813689, abs=1e-6)       # n = 3 had c < M
    assert a["threshold"] == pytest.approx(threshold)
    assert a["first_signalled_at"].isoformat() == "2025-02-05T01:00:00+00:00"  # 09:00 +08:00
    assert a["method"] == "binomial MaxSPRT" and a["baseline"] == pytest.approx(0.1)
    # SITE-B: no reaction, LLR 0 throughout.
    b = got[("site_id", "SITE-B")]
    assert (b["status"], b["statistic"], b["observed"], b["first_signalled_at"]) == ("no signal", 0.0, 0, None)
    assert b["expected"] == pytest.approx(3.5)
    # cervical / monotherapy hold all 40 (above): LLR 0 throughout.
    for key in (("tumor_type", "cervical"), ("regimen_class", "monotherapy")):
        r = got[key]
        assert (r["status"], r["statistic"], r["observed"], r["infusions"]) == ("no signal", 0.0, 4, 40)
        assert r["expected"] == pytest.approx(4.0)
    # newest signal first, then the rest
    assert [r["status"] for r in rows(path, "SELECT status FROM marts.signals")][0] == "signal"


def test_no_infusions_no_rows_and_no_reactions_no_signal(tmp_path):
    home = Home(tmp_path / "home")
    write_batch(home, "b1", site_id="SITE-B", patients=[patient("P1")])
    path = build_home(home)
    assert rows(path, "SELECT * FROM marts.signals") == []
    assert one(path, "SELECT baseline, critical_value FROM core.signal_design") == {
        "baseline": None, "critical_value": None}

    home = Home(tmp_path / "home2")
    write_batch(home, "b1", site_id="SITE-B", patients=[patient("P1")],
                infusions=[infusion("I1", "P1"), infusion("I2", "P1", cycle=2,
                                                          started_at="2025-02-01T09:00:00+08:00")])
    path = build_home(home)
    got = rows(path, "SELECT status, statistic, threshold, observed, expected FROM marts.signals")
    assert len(got) == 3  # the site, its tumor type and its regimen class
    assert all(r == {"status": "no signal", "statistic": 0.0, "threshold": None,
                     "observed": 0, "expected": 0.0} for r in got)


def test_figures_at_the_signal_stay_when_the_counts_fall_back(tmp_path):
    """A signal is never withdrawn: marts.signals keeps the figures at the infusion where
    the LLR first reached the threshold beside today's counts and the highest LLR."""
    # SITE-B: 40 infusions in January, none with a reaction.
    # SITE-A: 10 infusions on 1-10 February; reactions on the 1st, 2nd, 3rd, 5th and 6th.
    path = _quiet_site_then_reacting_site(tmp_path, quiet=40, reacting=10, reactions_on=(0, 1, 2, 4, 5))
    # Baseline = 5 / 50 = 0.1, so N = 1000, M = 4 and the critical value is the one above.
    threshold = maxsprt_critical_value(0.1, 1000, 0.05, 4)
    # SITE-A by hand (p0 = 0.1):
    #   n=3 c=3: 6.907755, but c < M = 4: no signal
    #   n=5 c=4: 4 ln(4/0.5) + ln(1/4.5) = 8.317766 - 1.504077 = 6.813689 >= 3.63: signal here
    #   n=6 c=5: 5 ln(5/0.6) + ln(1/5.4) = 5 x 2.1202635 - 1.6863990 = 8.914919 (the highest)
    #   then four infusions without a reaction: today 5 observed, 10 x 0.1 = 1.0 expected.
    a = one(path, "SELECT * FROM marts.signals WHERE stratum_type = 'site_id' AND stratum = 'SITE-A'")
    assert a["threshold"] == pytest.approx(threshold)
    assert (a["status"], a["signalled_at_infusion"], a["infusions"], a["observed"]) == ("signal", 5, 10, 5)
    assert a["expected"] == pytest.approx(1.0)
    assert a["statistic"] == pytest.approx(8.914919, abs=1e-6)
    assert (a["observed_at_signal"], a["expected_at_signal"]) == (4, pytest.approx(0.5))
    assert a["llr_at_signal"] == pytest.approx(6.813689, abs=1e-6)
    assert a["first_signalled_at"].isoformat() == "2025-02-05T01:00:00+00:00"
    # SITE-B never signals: nothing at a signal.
    b = one(path, "SELECT * FROM marts.signals WHERE stratum = 'SITE-B'")
    assert (b["status"], b["observed_at_signal"], b["expected_at_signal"], b["llr_at_signal"]) == (
        "no signal", None, None, None)


def test_surveillance_ends_after_max_infusions(tmp_path):
    """Only a stratum's first max_infusions infusions are monitored: the later ones have
    no row in core.signal_paths and count in no figure of the test."""
    home = Home(tmp_path / "home")
    # SITE-B: 20 infusions on 1-20 January, none with a reaction.
    write_batch(home, "b1", site_id="SITE-B",
                patients=[patient(f"B{i}", first_dose_date="2025-01-01") for i in range(20)],
                infusions=[infusion(f"BI{i:03d}", f"B{i}", started_at=f"2025-01-{1 + i:02d}T09:00:00+08:00")
                           for i in range(20)])
    # SITE-A: 110 infusions from 1 February, one an hour, every one with a reaction.
    write_batch(home, "a1", site_id="SITE-A",
                patients=[patient(f"A{i}", first_dose_date="2025-01-01") for i in range(110)],
                infusions=[infusion(f"AI{i:03d}", f"A{i}",
                                    started_at=f"2025-02-{1 + i // 24:02d}T{i % 24:02d}:00:00+08:00")
                           for i in range(110)],
                reactions=[reaction(f"AR{i:03d}", f"AI{i:03d}") for i in range(110)])
    path = build_home(home)
    # Baseline 110 / 130 = 0.846154; N = floor(100 / 0.846154) = floor(118.18) = 118.
    design = one(path, "SELECT baseline, max_infusions FROM core.signal_design")
    assert design == {"baseline": pytest.approx(110 / 130), "max_infusions": 118}
    # The whole program (tumor type cervical): SITE-B's 20, then SITE-A's 110. Monitored:
    # infusions 1-118, whose reactions are SITE-A's first 98 (infusions 21-118).
    path_cervical = rows(path, "SELECT infusion_index, observed, infusion_ref FROM core.signal_paths "
                               "WHERE stratum_type = 'tumor_type' ORDER BY infusion_index")
    assert [(r["infusion_index"], r["observed"]) for r in path_cervical] == [
        (21 + k, 1 + k) for k in range(98)]
    assert (path_cervical[0]["infusion_ref"], path_cervical[-1]["infusion_ref"]) == ("AI000", "AI097")
    got = one(path, "SELECT infusions, monitored_infusions, observed, surveillance_ended "
                    "FROM marts.signals WHERE stratum_type = 'tumor_type'")
    assert got == {"infusions": 130, "monitored_infusions": 118, "observed": 98,
                   "surveillance_ended": True}
    # SITE-A's own stratum: 110 infusions, all within 118: every one has its row.
    a = rows(path, "SELECT infusion_index FROM core.signal_paths WHERE stratum = 'SITE-A' "
                   "ORDER BY infusion_index")
    assert [r["infusion_index"] for r in a] == list(range(1, 111))
    assert one(path, "SELECT observed, surveillance_ended FROM marts.signals WHERE stratum = 'SITE-A'") == {
        "observed": 110, "surveillance_ended": False}


def test_infusions_tied_at_the_end_of_surveillance_are_ranked_by_the_tie_break(tmp_path):
    """When the last monitored infusion shares its start with later ones, the order's
    tie-break (site_id, then infusion_ref) decides which of them are monitored."""
    home = Home(tmp_path / "home")
    write_batch(home, "b1", site_id="SITE-B",
                patients=[patient(f"B{i}", first_dose_date="2025-01-01") for i in range(20)],
                infusions=[infusion(f"BI{i:03d}", f"B{i}", started_at=f"2025-01-{1 + i:02d}T09:00:00+08:00")
                           for i in range(20)])
    # SITE-A: AI000-AI095 one an hour from 1 February; AI096-AI109 (14) all at the same
    # instant on 10 February; every one with a reaction.
    starts = [f"2025-02-{1 + i // 24:02d}T{i % 24:02d}:00:00+08:00" for i in range(96)]
    starts += ["2025-02-10T09:00:00+08:00"] * 14
    write_batch(home, "a1", site_id="SITE-A",
                patients=[patient(f"A{i}", first_dose_date="2025-01-01") for i in range(110)],
                infusions=[infusion(f"AI{i:03d}", f"A{i}", started_at=starts[i]) for i in range(110)],
                reactions=[reaction(f"AR{i:03d}", f"AI{i:03d}") for i in range(110)])
    path = build_home(home)
    # As above, N = 118: SITE-B's 20, then SITE-A's AI000-AI095 (positions 21-116), then
    # of the 14 tied (positions 117-130 by infusion_ref) AI096 and AI097 only.
    assert one(path, "SELECT max_infusions FROM core.signal_design") == {"max_infusions": 118}
    got = rows(path, "SELECT infusion_index, observed, infusion_ref FROM core.signal_paths "
                     "WHERE stratum_type = 'tumor_type' ORDER BY infusion_index")
    assert [(r["infusion_index"], r["observed"], r["infusion_ref"]) for r in got] == [
        (21 + k, 1 + k, f"AI{k:03d}") for k in range(98)]
