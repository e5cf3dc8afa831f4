"""Warehouse build: the onset and severity marts (issue 5, item 3).

marts.irae_cumulative_incidence / marts.irae_incidence_by_category (Kaplan-Meier with
Greenwood intervals), marts.reaction_onset and marts.grade_distribution, against a tiny
event set whose every figure is worked out by hand below.
"""
from __future__ import annotations

import math

import pytest

from eventkit import (build_home, infusion, irae, patient, reaction, retraction, rows,
                      write_batch)
from safety_ledger.home import Home

Z = 1.959964

# Every patient's first dose is 2025-01-01 (day 0).  Days of the dates used:
#   2025-01-11 = 10, 2025-01-22 = 21, 2025-01-31 = 30, 2025-02-05 = 35,
#   2025-02-12 = 42, 2025-03-01 = 59 (31 + 28), 2025-03-05 = 63.
DAY = {0: "2025-01-01", 10: "2025-01-11", 21: "2025-01-22", 30: "2025-01-31",
       35: "2025-02-05", 42: "2025-02-12", 59: "2025-03-01", 63: "2025-03-05"}


def inf(ref: str, pk: str, day: int, cycle: int):
    return infusion(ref, pk, cycle=cycle, started_at=f"{DAY[day]}T09:00:00+08:00")


def write_events(home: Home) -> None:
    """The worked example's events (also used by tests/test_onset_dashboard.py)."""
    write_batch(
        home, "b1",
        patients=[patient(p) for p in ("P1", "P2", "P3", "P4", "P5", "P6")],
        infusions=[
            # last infusion (censor day): P1 42, P2 21, P3 63, P4 42, P5 0; P6 none
            inf("I11", "P1", 0, 1), inf("I12", "P1", 21, 2), inf("I13", "P1", 42, 3),
            inf("I21", "P2", 0, 1), inf("I22", "P2", 21, 2),
            inf("I31", "P3", 0, 1), inf("I32", "P3", 21, 2), inf("I33", "P3", 42, 3),
            inf("I34", "P3", 63, 4),
            inf("I41", "P4", 0, 1), inf("I42", "P4", 21, 2), inf("I43", "P4", 42, 3),
            inf("I51", "P5", 0, 1),
        ],
        reactions=[
            reaction("R1", "I11", term="infusion_related_reaction", grade=1, onset_min=5),
            reaction("R2", "I12", term="infusion_related_reaction", grade=2, onset_min=15),
            reaction("R3", "I21", term="infusion_related_reaction", grade=2, onset_min=45),
            reaction("R4", "I31", term="anaphylaxis", grade=3, onset_min=10),
            reaction("R5", "I32", term="infusion_related_reaction", grade=1, onset_min=20),
            reaction("R6", "I41", term="infusion_related_reaction", grade=1, onset_min=999),
        ],
        iraes=[
            irae("E1", "P1", onset_date=DAY[10], category="hepatitis", grade=2),
            irae("E2", "P1", onset_date=DAY[35], category="hepatitis", grade=1),  # not the first
            irae("E3", "P3", onset_date=DAY[42], category="hepatitis", grade=3),
            irae("E4", "P4", onset_date=DAY[59], category="hepatitis", grade=2),  # after last infusion
            irae("E5", "P6", onset_date="2025-01-15", category="hepatitis", grade=1),  # no infusion
            irae("E6", "P4", onset_date=DAY[30], category="colitis", grade=3),
            irae("E7", "P3", onset_date=DAY[63], category="thyroiditis", grade=2),  # on last infusion day
            irae("E8", "P2", onset_date="2025-01-06", category="hepatitis", grade=4),  # retracted
        ],
        retractions=[retraction("irae", "E8"), retraction("reaction", "R6")],
    )


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    home = Home(tmp_path_factory.mktemp("onset") / "home")
    write_events(home)
    return build_home(home)


def curve(path, category):
    return rows(path, "SELECT * FROM marts.irae_cumulative_incidence WHERE category = ? "
                      "ORDER BY day", [category])


def test_kaplan_meier_hepatitis_by_hand(warehouse):
    # Cohort: P1..P5 (current infusions); P6 has none and is left out.
    # Hepatitis, first current onset per patient and censor day:
    #   P1 event day 10 (E1; E2 on day 35 is not the first)   P2 censored day 21 (E8 retracted)
    #   P3 event day 42 (<= censor 63)                          P4 censored day 42 (E4 on day 59
    #                                                              is after the last infusion)
    #   P5 censored day 0
    # day  n  d  c   S                     Greenwood sum d/(n(n-d))
    #  0   5  0  1   1                     0
    # 10   4  1  0   1 - 1/4 = 0.75        1/(4*3) = 1/12
    # 21   3  0  1   0.75                  1/12
    # 42   2  1  1   0.75 * (1 - 1/2) = 0.375   1/12 + 1/(2*1) = 7/12
    # SE(S) = S sqrt(sum):  day 10: 0.75 sqrt(1/12) = 0.216506;  day 42: 0.375 sqrt(7/12) = 0.286411
    # 95% CI of 1 - S = (1 - S) -/+ 1.959964 SE, clipped to [0, 1]:
    #   day 10: 0.25 -/+ 0.424345 -> 0, 0.674345;   day 42: 0.625 -/+ 0.561355 -> 0.063645, 1
    got = curve(warehouse, "hepatitis")
    assert [(r["day"], r["at_risk"], r["events"], r["censored"]) for r in got] == [
        (0, 5, 0, 1), (10, 4, 1, 0), (21, 3, 0, 1), (42, 2, 1, 1)]
    assert [r["cumulative_incidence"] for r in got] == pytest.approx([0.0, 0.25, 0.25, 0.625])
    assert [r["survival"] for r in got] == pytest.approx([1.0, 0.75, 0.75, 0.375])
    assert [r["greenwood_se"] for r in got] == pytest.approx(
        [0.0, 0.216506, 0.216506, 0.286411], abs=1e-6)
    assert [(r["ci_low"], r["ci_high"]) for r in got] == [
        (0.0, 0.0), (0.0, pytest.approx(0.674345, abs=1e-6)),
        (0.0, pytest.approx(0.674345, abs=1e-6)), (pytest.approx(0.063645, abs=1e-6), 1.0)]


def test_kaplan_meier_colitis_and_a_curve_that_reaches_one(warehouse):
    # Colitis: P4 event day 30; censored P5 0, P2 21, P1 42, P3 63.
    #   day 30: n = 3 (P4, P1, P3), d = 1 -> S = 2/3, sum 1/(3*2) = 1/6,
    #   SE = (2/3) sqrt(1/6) = 0.272166, CI 1/3 -/+ 0.533435 -> 0, 0.866768
    got = curve(warehouse, "colitis")
    assert [(r["day"], r["at_risk"], r["events"], r["censored"]) for r in got] == [
        (0, 5, 0, 1), (21, 4, 0, 1), (30, 3, 1, 0), (42, 2, 0, 1), (63, 1, 0, 1)]
    c30 = got[2]
    assert c30["cumulative_incidence"] == pytest.approx(1 / 3)
    assert c30["greenwood_se"] == pytest.approx(0.272166, abs=1e-6)
    assert (c30["ci_low"], c30["ci_high"]) == (0.0, pytest.approx(0.866768, abs=1e-6))
    # Thyroiditis: P3's onset on day 63, the day of P3's last infusion, counts (<= censor).
    # Everyone else is censored earlier (P5 0, P2 21, P1 and P4 42), so on day 63 n = d = 1:
    # S = 0, cumulative incidence 1, and Greenwood's d/(n(n-d)) is undefined -> no interval.
    got = curve(warehouse, "thyroiditis")
    assert [(r["day"], r["at_risk"], r["events"], r["censored"]) for r in got] == [
        (0, 5, 0, 1), (21, 4, 0, 1), (42, 3, 0, 2), (63, 1, 1, 0)]
    last = got[-1]
    assert last["cumulative_incidence"] == pytest.approx(1.0)
    assert (last["greenwood_se"], last["ci_low"], last["ci_high"]) == (None, None, None)
    assert got[-2]["cumulative_incidence"] == pytest.approx(0.0)


def test_incidence_by_category(warehouse):
    got = {r["category"]: r for r in rows(warehouse,
                                           "SELECT * FROM marts.irae_incidence_by_category")}
    assert sorted(got) == ["colitis", "hepatitis", "thyroiditis"]
    h = got["hepatitis"]
    # events P1, P3; after the last infusion P4; censored P2, P4, P5; P6 no infusion;
    # median onset day of the counted events (10, 42) = 26
    assert (h["cohort_patients"], h["events"], h["events_after_last_infusion"], h["censored"],
            h["patients_without_infusion"], h["max_day"]) == (5, 2, 1, 3, 1, 42)
    assert h["cumulative_incidence"] == pytest.approx(0.625)
    assert (h["ci_low"], h["ci_high"]) == (pytest.approx(0.063645, abs=1e-6), 1.0)
    assert h["median_onset_day"] == pytest.approx(26)
    c = got["colitis"]
    assert (c["cohort_patients"], c["events"], c["events_after_last_infusion"], c["censored"],
            c["patients_without_infusion"], c["max_day"]) == (5, 1, 0, 4, 0, 63)
    assert c["cumulative_incidence"] == pytest.approx(1 / 3)  # the curve's end: day 63
    t = got["thyroiditis"]
    assert (t["events"], t["max_day"], t["ci_low"]) == (1, 63, None)
    assert t["median_onset_day"] == pytest.approx(63)


def test_reaction_onset_quartiles_by_hand(warehouse):
    # Current reactions (R6 retracted): IRR grade 1: R1 5 (P1), R5 20 (P3);
    # IRR grade 2: R2 15 (P1), R3 45 (P2); anaphylaxis grade 3: R4 10 (P3).
    # Quartiles by linear interpolation at h = (n - 1) p over the sorted values:
    #   IRR g1 (5, 20):  q1 5 + 0.25*15 = 8.75, median 12.5, q3 16.25
    #   IRR g2 (15, 45): q1 22.5, median 30, q3 37.5
    #   IRR all (5, 15, 20, 45): q1 h=0.75 -> 5 + 0.75*10 = 12.5; median h=1.5 -> 17.5;
    #                            q3 h=2.25 -> 20 + 0.25*25 = 26.25; within 30 min: 3
    #   all terms, all grades (5, 10, 15, 20, 45): q1 10, median 15, q3 20; within 30: 4
    #   all terms, grade 1 = IRR g1
    got = {(r["term"], r["grade"]): r for r in rows(warehouse, "SELECT * FROM marts.reaction_onset")}
    assert set(got) == {("infusion_related_reaction", 1), ("infusion_related_reaction", 2),
                        ("infusion_related_reaction", None), ("anaphylaxis", 3),
                        ("anaphylaxis", None), ("all", 1), ("all", 2), ("all", 3),
                        ("all", None)}

    def fig(key):
        r = got[key]
        return (r["reactions"], r["patients"], r["min_onset_min"], r["q1_onset_min"],
                r["median_onset_min"], r["q3_onset_min"], r["max_onset_min"], r["within_30_min"])

    assert fig(("infusion_related_reaction", 1)) == (2, 2, 5, 8.75, 12.5, 16.25, 20, 2)
    assert fig(("infusion_related_reaction", 2)) == (2, 2, 15, 22.5, 30, 37.5, 45, 1)
    assert fig(("infusion_related_reaction", None)) == (4, 3, 5, 12.5, 17.5, 26.25, 45, 3)
    assert fig(("anaphylaxis", 3)) == (1, 1, 10, 10, 10, 10, 10, 1)
    assert fig(("all", None)) == (5, 3, 5, 10, 15, 20, 45, 4)
    assert fig(("all", 1)) == fig(("infusion_related_reaction", 1))


def wilson(k, n):
    # 95% Wilson score interval (z = 1.959964), written out here independently of the SQL
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return centre - half, centre + half


def test_grade_distribution(warehouse):
    got = {(r["event_type"], r["kind"], r["grade"]): r
           for r in rows(warehouse, "SELECT * FROM marts.grade_distribution")}
    # Reactions: IRR g1 2, g2 2 (4 in all); anaphylaxis g3 1; all terms g1 2, g2 2, g3 1 (5).
    # irAEs (all current ones, whatever the follow-up; E8 retracted):
    #   hepatitis g1 E2, E5; g2 E1, E4; g3 E3 (5);  colitis g3 E6 (1);  thyroiditis g2 E7 (1)
    #   all categories: g1 2, g2 3 (E1, E4, E7: P1, P4, P3), g3 2 (E3, E6) -> 7
    counts = {k: (r["events"], r["kind_events"]) for k, r in got.items() if r["events"]}
    assert counts == {
        ("reaction", "infusion_related_reaction", 1): (2, 4),
        ("reaction", "infusion_related_reaction", 2): (2, 4),
        ("reaction", "anaphylaxis", 3): (1, 1),
        ("reaction", "all", 1): (2, 5), ("reaction", "all", 2): (2, 5),
        ("reaction", "all", 3): (1, 5),
        ("irae", "hepatitis", 1): (2, 5), ("irae", "hepatitis", 2): (2, 5),
        ("irae", "hepatitis", 3): (1, 5), ("irae", "colitis", 3): (1, 1),
        ("irae", "thyroiditis", 2): (1, 1),
        ("irae", "all", 1): (2, 7), ("irae", "all", 2): (3, 7), ("irae", "all", 3): (2, 7),
    }
    # every grade 1-5 of every kind has a row: 3 reaction kinds + 4 irAE kinds, x 5
    assert len(got) == 35
    zero = got[("irae", "hepatitis", 5)]
    assert (zero["events"], zero["share"], zero["ci_low"]) == (0, 0.0, 0.0)
    assert got[("irae", "all", 2)]["patients"] == 3
    # 2 of 4: z^2 = 3.841459, Wilson centre 0.5,
    # half = 1.959964 sqrt(0.0625 + 3.841459/64) / (1 + 3.841459/4) = 0.686051 / 1.960365 = 0.349961
    r = got[("reaction", "infusion_related_reaction", 1)]
    assert r["share"] == 0.5
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(0.150039, abs=1e-6),
                                           pytest.approx(0.849961, abs=1e-6))
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(wilson(2, 4))
    r = got[("irae", "all", 2)]
    assert r["share"] == pytest.approx(3 / 7)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(wilson(3, 7))


def test_no_iraes_no_rows(tmp_path):
    home = Home(tmp_path / "home")
    write_batch(home, "b1", patients=[patient("P1")], infusions=[infusion("I1", "P1")])
    path = build_home(home)
    for t in ("irae_cumulative_incidence", "irae_incidence_by_category", "reaction_onset",
              "grade_distribution"):
        assert rows(path, f"SELECT count(*) AS n FROM marts.{t}") == [{"n": 0}], t


def test_the_marts_count_what_the_followup_view_defines(warehouse):
    # core.irae_followup lists every (cohort patient, category) pair; the marts count the
    # same figures from the cohort and the first onsets without listing the pairs.
    by_view = rows(warehouse, """
        SELECT category, day, count(*) FILTER (WHERE is_event) AS events,
               count(*) FILTER (WHERE NOT is_event) AS censored
        FROM core.irae_followup GROUP BY ALL ORDER BY ALL""")
    by_mart = rows(warehouse, """
        SELECT category, day, events, censored
        FROM marts.irae_cumulative_incidence ORDER BY ALL""")
    assert by_mart == by_view
    assert len(by_view) == 13   # hepatitis 4 days, colitis 5, thyroiditis 4 (above)
    by_view = rows(warehouse, """
        SELECT category, count(*) AS cohort_patients, count(*) FILTER (WHERE is_event) AS events,
               count(*) FILTER (WHERE after_censor) AS events_after_last_infusion,
               count(*) FILTER (WHERE NOT is_event) AS censored, max(day) AS max_day
        FROM core.irae_followup GROUP BY ALL ORDER BY ALL""")
    by_mart = rows(warehouse, """
        SELECT category, cohort_patients, events, events_after_last_infusion, censored, max_day
        FROM marts.irae_incidence_by_category ORDER BY ALL""")
    assert by_mart == by_view
