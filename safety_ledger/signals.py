"""The critical value of the binomial MaxSPRT behind marts.signals.

Method: the maximized sequential probability ratio test (MaxSPRT) for binomial data with
continuous monitoring,

    M. Kulldorff, R. L. Davis, M. Kolczak, E. Lewis, T. Lieu, R. Platt (2011).
    A maximized sequential probability ratio test for drug and vaccine safety
    surveillance. Sequential Analysis 30:58-78,

with a minimum number of events before a signal as in

    M. Kulldorff, I. R. Silva (2017). Continuous post-market sequential safety
    surveillance with minimum events to signal. REVSTAT 15(3):373-394.

Each infusion of a stratum is one Bernoulli trial (a reaction or not); under H0 the
reaction probability is the baseline p0 (Kulldorff's matched-case formulation with
p0 = 1 / (1 + z)).  After n infusions with c reactions the log-likelihood ratio maximized
over p >= p0 is

    LLR(c, n) = c ln(c / (n p0)) + (n - c) ln((n - c) / (n (1 - p0)))   if c > n p0,
              = 0                                                        otherwise

(0 ln 0 = 0).  H0 is rejected (a signal) at the first n <= N with c >= M and
LLR(c, n) >= cv.  The SQL models compute the LLR (transforms/core/signal_paths.sql); this
module gives cv: the smallest flat boundary whose probability of ever being crossed
within N infusions under H0 is at most alpha (as R's Sequential::CV.Binomial does), and
that probability exactly (no simulation):

With c fixed, LLR(c, n) falls as n grows (d/dn = ln((1 - c/n) / (1 - p0)) < 0 while
c/n > p0), so a signal with c reactions happens iff the c-th reaction comes at or before
infusion t_c = the largest n with LLR(c, n) >= cv.  "No signal by N" is therefore:
(reactions in the first t_c infusions) <= c - 1 for every c >= M that has a t_c < N, and
(reactions in N infusions) <= c* - 1 for the first such c* whose t_c* >= N.  Its
probability is a chain of binomial steps between these check points: a dynamic programme
over the count, about N p0 steps long.  alpha(cv) is a step function (the data are
discrete), so cv is found by bisection and rounded up to 6 decimals.

build.py registers `maxsprt_critical_value` and `maxsprt_signal_probability` as DuckDB
functions for the build only.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.special import gammaln


def binomial_llr(reactions: float, infusions: float, baseline: float) -> float:
    """LLR(c, n) of the binomial MaxSPRT (one-sided: 0 unless c > n p0)."""
    c, n, p0 = reactions, infusions, baseline
    if n <= 0 or not 0 < p0 < 1 or c <= n * p0:
        return 0.0
    llr = c * math.log(c / (n * p0))
    if n > c:
        llr += (n - c) * math.log((n - c) / (n * (1 - p0)))
    return llr


def _llr(c: np.ndarray, n: np.ndarray, p0: float) -> np.ndarray:
    """binomial_llr over arrays (c >= 1, n >= c)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rest = np.where(n > c, (n - c) * np.log((n - c) / (n * (1 - p0))), 0.0)
        llr = c * np.log(c / (n * p0)) + rest
    return np.where(c > n * p0, llr, 0.0)


def _last_infusion(counts: np.ndarray, cv: float, p0: float) -> np.ndarray:
    """t_c for each count c: the largest n >= c with LLR(c, n) >= cv; -1 when even n = c
    (every infusion a reaction) stays below cv."""
    c = counts.astype(float)
    can = c * math.log(1 / p0) >= cv
    lo = c.copy()             # LLR(c, lo) >= cv where `can`
    hi = c / p0               # LLR(c, c / p0) = 0 < cv
    # bisection on the real n: (c / p0) / 2**30 is well under one infusion
    for _ in range(30):
        mid = (lo + hi) / 2
        up = _llr(c, mid, p0) >= cv
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    t = np.floor(lo)
    # settle the integer exactly against the same formula
    t = np.where(_llr(c, t + 1, p0) >= cv, t + 1, t)
    t = np.where((t > c) & (_llr(c, np.maximum(t, c), p0) < cv), t - 1, t)
    return np.where(can, t, -1).astype(np.int64)


def _boundary(cv: float, p0: float, max_infusions: int, min_events: int,
              max_count: int) -> tuple[np.ndarray, np.ndarray]:
    """For each count c = max(1, M) .. max_count: min(t_c, N), or -1 where c reactions can
    never reach cv.  A signal happens iff for some c the c-th reaction comes at or before
    that infusion, so this vector is the whole test."""
    counts = np.arange(max(1, min_events), max_count + 1)
    t = _last_infusion(counts, cv, p0)
    return counts, np.where(t >= 0, np.minimum(t, max_infusions), -1)


def _full_boundary(cv: float, p0: float, max_infusions: int,
                   min_events: int) -> tuple[np.ndarray, np.ndarray]:
    """_boundary over enough counts to reach the check at N (c* is about N p0 plus a few
    standard deviations; more only for a huge cv)."""
    mean = max_infusions * p0
    top = int(min(max_infusions, mean + 10 * math.sqrt(mean) + 40))
    while True:
        counts, t = _boundary(cv, p0, max_infusions, min_events, top)
        if top >= max_infusions or (t >= max_infusions).any():
            return counts, t
        top = min(max_infusions, 2 * top)


def _signal_probability(counts: np.ndarray, t: np.ndarray, p: float,
                        max_infusions: int) -> float:
    """P(signal) for the boundary (counts, t) when each infusion reacts with probability p."""
    keep = t >= 0  # a count that can never reach cv sets no constraint
    counts, t = counts[keep], t[keep]
    at_end = np.flatnonzero(t >= max_infusions)
    if at_end.size:  # the first count whose check is at N: later counts cannot add a signal
        counts, t = counts[: at_end[0] + 1], t[: at_end[0] + 1]
    if t.size == 0:
        return 0.0
    limit = counts - 1  # most reactions allowed by infusion t without a signal
    # Binomial(gap, p) probabilities of 0..limit reactions between check points, all at once
    gap = np.diff(t, prepend=0)[:, None]
    k = np.arange(int(limit.max()) + 1)[None, :]
    ok = (k <= gap) & (k <= limit[:, None])
    if p >= 1.0:
        steps = ((k == gap) & ok).astype(float)
    else:
        kk = np.where(ok, k, 0).astype(float)
        g = gap.astype(float)
        log = (gammaln(g + 1) - gammaln(kk + 1) - gammaln(np.maximum(g - kk, 0) + 1)
               + kk * math.log(p) + (g - kk) * math.log1p(-p))
        steps = np.exp(np.where(ok, log, -np.inf))
    alive = np.array([1.0])  # P(j reactions so far and no signal yet), j = 0, 1, ...
    for step, lim in zip(steps, limit):
        alive = np.convolve(alive, step[: lim + 1])[: lim + 1]
    return float(max(0.0, 1.0 - alive.sum()))


def maxsprt_signal_probability(cv: float, baseline: float, max_infusions: int,
                               relative_risk: float = 1.0, min_events: int = 1) -> float | None:
    """P(the binomial MaxSPRT with critical value `cv` signals within `max_infusions`)
    when each infusion reacts with probability relative_risk x baseline: the false-alarm
    probability at relative_risk 1, the power above it."""
    if cv is None or baseline is None or max_infusions is None or not 0 < baseline < 1:
        return None
    n = int(max_infusions)
    counts, t = _full_boundary(cv, baseline, n, int(min_events))
    return _signal_probability(counts, t, min(1.0, relative_risk * baseline), n)


@lru_cache(maxsize=256)
def maxsprt_critical_value(baseline: float, max_infusions: int, alpha: float = 0.05,
                           min_events: int = 1) -> float | None:
    """The smallest critical value cv of the continuous binomial MaxSPRT with
    P(signal within `max_infusions` | H0: rate = baseline) <= alpha, rounded up to 6
    decimals.  None when the baseline is 0 or 1 (no test is possible).

    alpha(cv) is a step function: it drops where cv passes some LLR(c, n) of the grid.
    Bisection keeps lo (alpha too big) and hi (alpha small enough) until their boundaries
    differ by one such step; the answer is just above that LLR(c, n)."""
    if (baseline is None or max_infusions is None or alpha is None
            or not 0 < baseline < 1 or max_infusions < 1 or not 0 < alpha < 1):
        return None
    n, m, p0 = int(max_infusions), int(min_events), float(baseline)

    def look(cv: float) -> tuple[np.ndarray, np.ndarray, bool]:
        counts, t = _full_boundary(cv, p0, n, m)
        return counts, t, _signal_probability(counts, t, p0, n) > alpha

    lo, hi = 0.0, 2.0
    counts, t_hi, too_big = look(hi)
    t_lo = None
    while too_big:
        lo, t_lo = hi, t_hi
        hi *= 2.0
        counts, t_hi, too_big = look(hi)
    if t_lo is None:
        counts, t_lo, _ = look(lo)
    while hi - lo > 1e-10:
        differ = np.flatnonzero(t_lo != t_hi) if t_lo.shape == t_hi.shape else ()
        if len(differ) == 1:
            i = differ[0]
            c, a, b = int(counts[i]), int(t_lo[i]), int(t_hi[i])
            if b == a - 1 or (b == -1 and a == c):  # one step, at LLR(c, a)
                return math.floor(binomial_llr(c, a, p0) * 1e6 + 1) / 1e6
        mid = (lo + hi) / 2.0
        _, t_mid, too_big = look(mid)
        if too_big:
            lo, t_lo = mid, t_mid
        else:
            hi, t_hi = mid, t_mid
    return math.ceil(hi * 1e6) / 1e6
