"""Warehouse build: the reaction-rate marts (Wilson intervals, regimen classes, corrections).

Every expected figure is worked out by hand from the events written here.
"""
from __future__ import annotations

import pytest

from eventkit import build_home, infusion, one, patient, reaction, rows, write_batch
from safety_ledger import contract
from safety_ledger.home import Home


@pytest.fixture
def home(tmp_path) -> Home:
    return Home(tmp_path / "home")


def by(rows_: list[dict], key: str) -> dict:
    return {r[key]: r for r in rows_}


def test_wilson_interval_two_of_ten(home):
    # Ten patients, one cycle-1 infusion each; reactions on two of them (grade 1 and grade 3).
    pts = [patient(f"P{i}") for i in range(10)]
    infs = [infusion(f"I{i}", f"P{i}", cycle=1) for i in range(10)]
    write_batch(home, "b1", patients=pts, infusions=infs,
                reactions=[reaction("R1", "I0", grade=1), reaction("R2", "I1", grade=3)])
    path = build_home(home)
    r = one(path, "SELECT * FROM marts.reaction_rate_by_cycle")
    assert r["cycle"] == 1
    assert (r["infusions"], r["reaction_infusions"], r["grade3plus_infusions"], r["patients"]) == (10, 2, 1, 10)
    # Reaction rate 2/10 = 0.2.  Wilson, z = 1.959964, z^2 = 3.8414588:
    #   denominator 1 + z^2/n = 1 + 0.3841459 = 1.3841459
    #   centre numerator p + z^2/(2n) = 0.2 + 0.1920729 = 0.3920729
    #   half numerator z * sqrt(p(1-p)/n + z^2/(4n^2)) = 1.959964 * sqrt(0.016 + 0.0096036)
    #                                                  = 1.959964 * 0.1600113 = 0.3136164
    #   low  = (0.3920729 - 0.3136164) / 1.3841459 = 0.0784565 / 1.3841459 = 0.05668
    #   high = (0.3920729 + 0.3136164) / 1.3841459 = 0.7056893 / 1.3841459 = 0.50984
    assert r["reaction_rate"] == pytest.approx(0.2)
    assert round(r["ci_low"], 4) == 0.0567
    assert round(r["ci_high"], 4) == 0.5098
    # Grade 3+ rate 1/10 = 0.1:
    #   centre numerator 0.1 + 0.1920729 = 0.2920729
    #   half numerator 1.959964 * sqrt(0.009 + 0.0096036) = 1.959964 * 0.1363950 = 0.2673293
    #   low  = 0.0247436 / 1.3841459 = 0.01788;  high = 0.5594022 / 1.3841459 = 0.40415
    assert r["grade3plus_rate"] == pytest.approx(0.1)
    assert round(r["grade3plus_ci_low"], 4) == 0.0179
    assert round(r["grade3plus_ci_high"], 4) == 0.4042


def test_zero_infusions_give_null_rate_and_interval(home):
    # SITE-A sent infusions; SITE-B sent only a patient: its row has 0 infusions and
    # NULL rates, intervals and funnel - never 0, never an error.
    write_batch(home, "a1", site_id="SITE-A", patients=[patient("P1")],
                infusions=[infusion("I1", "P1")])
    write_batch(home, "b1", site_id="SITE-B", patients=[patient("Q1")])
    path = build_home(home)
    b = one(path, "SELECT * FROM marts.reaction_rate_by_site WHERE site_id = 'SITE-B'")
    assert (b["infusions"], b["reaction_infusions"], b["grade3plus_infusions"], b["patients"]) == (0, 0, 0, 0)
    for col in ("reaction_rate", "ci_low", "ci_high", "grade3plus_rate", "grade3plus_ci_low",
                "grade3plus_ci_high", "observed_to_expected", "funnel_low", "funnel_high",
                "outside_funnel"):
        assert b[col] is None, col
    assert b["expected_reaction_infusions"] == 0
    # The shared macros, called directly, say the same.
    m = one(path, "SELECT rate(0, 0) AS r, wilson_low(0, 0) AS lo, wilson_high(0, 0) AS hi")
    assert m == {"r": None, "lo": None, "hi": None}


REGIMENS = {
    # infusion ref: (combination, expected class)
    "mono": ([], "monotherapy"),
    "c": (["paclitaxel", "carboplatin"], "chemotherapy"),
    "cb": (["capecitabine", "bevacizumab"], "chemo_bevacizumab"),
    "t": (["lenvatinib"], "tki"),
    "ct": (["capecitabine", "apatinib"], "chemo_tki"),
    "cbt": (["bevacizumab", "oxaliplatin", "apatinib"], "chemo_tki"),       # C and T, B or not
    "bt": (["bevacizumab", "anlotinib"], "tki"),                            # T, no C -> tki
    "b": (["bevacizumab"], "other"),                                        # B alone
    "rt": (["radiotherapy"], "other"),                                      # only radiotherapy
    "oth": (["other"], "other"),
    "rt_oth": (["radiotherapy", "other"], "other"),
    "c_rt": (["paclitaxel", "radiotherapy"], "chemotherapy"),               # rt keeps C's class
    "cb_oth": (["capecitabine", "bevacizumab", "other"], "chemo_bevacizumab"),
    "t_rt": (["fruquintinib", "radiotherapy"], "tki"),
    "ct_rt": (["s1", "regorafenib", "radiotherapy"], "chemo_tki"),
}


def test_every_regimen_class_rule(home):
    write_batch(home, "b1", patients=[patient("P1")],
                infusions=[infusion(ref, "P1", combination=comb) for ref, (comb, _) in REGIMENS.items()],
                reactions=[reaction("R1", "b", grade=2)])
    path = build_home(home)
    got = {r["infusion_ref"]: r["regimen_class"]
           for r in rows(path, "SELECT infusion_ref, regimen_class FROM core.current_infusions")}
    assert got == {ref: cls for ref, (_, cls) in REGIMENS.items()}
    # Per class, counted by hand from the table above:
    #   monotherapy 1 (mono); chemotherapy 2 (c, c_rt); chemo_bevacizumab 2 (cb, cb_oth);
    #   tki 3 (t, bt, t_rt); chemo_tki 3 (ct, cbt, ct_rt); other 4 (b, rt, oth, rt_oth),
    #   the one reaction on "b" -> other: 1 of 4 with a reaction.
    marts = by(rows(path, "SELECT * FROM marts.reaction_rate_by_regimen"), "regimen_class")
    assert {k: v["infusions"] for k, v in marts.items()} == {
        "monotherapy": 1, "chemotherapy": 2, "chemo_bevacizumab": 2, "tki": 3, "chemo_tki": 3, "other": 4}
    assert marts["other"]["reaction_infusions"] == 1
    assert marts["other"]["reaction_rate"] == pytest.approx(0.25)
    assert all(v["patients"] == 1 for v in marts.values())


def test_regimen_macro_groups_match_the_contract_vocabulary(home):
    write_batch(home, "b1", patients=[patient("P1")])
    path = build_home(home)
    cases = ([(a, "chemotherapy") for a in contract.CHEMOTHERAPY]
             + [(a, "other") for a in contract.ANTI_ANGIOGENIC]
             + [(a, "tki") for a in contract.TKI]
             + [(a, "other") for a in contract.OTHER_AGENTS])
    assert {a for a, _ in cases} == set(contract.COMBINATION_AGENTS)
    for agent, expected in cases:
        got = one(path, "SELECT regimen_class([?]) AS c", [agent])["c"]
        assert got == expected, agent
    assert one(path, "SELECT regimen_class(NULL::VARCHAR[]) AS c")["c"] == "monotherapy"


def test_corrections_latest_recorded_at_wins(home):
    # Batch 1: P1 cervical; I1 (cycle 1) with reaction R1 grade 1; I2 (cycle 2) no reaction.
    write_batch(home, "b1", ingested_at="2025-06-01T00:00:00Z",
                patients=[patient("P1", tumor_type="cervical", recorded_at="2025-05-01T10:00:00+08:00")],
                infusions=[infusion("I1", "P1", cycle=1, recorded_at="2025-05-01T10:00:00+08:00"),
                           infusion("I2", "P1", cycle=2, started_at="2025-01-31T09:00:00+08:00",
                                    recorded_at="2025-05-01T10:00:00+08:00")],
                reactions=[reaction("R1", "I1", grade=1, recorded_at="2025-05-01T10:00:00+08:00")])
    # Batch 2 (later): P1 corrected to hcc (later recorded_at); R1 corrected to grade 3;
    # I2 re-sent with an EARLIER recorded_at claiming cycle 7: an older version, it loses.
    write_batch(home, "b2", ingested_at="2025-06-02T00:00:00Z",
                patients=[patient("P1", tumor_type="hcc", recorded_at="2025-05-20T10:00:00+08:00")],
                infusions=[infusion("I2", "P1", cycle=7, started_at="2025-01-31T09:00:00+08:00",
                                    recorded_at="2025-04-01T10:00:00+08:00")],
                reactions=[reaction("R1", "I1", grade=3, recorded_at="2025-05-20T10:00:00+08:00")])
    path = build_home(home)
    # Tumor type of both infusions = P1's current tumor type, hcc: 2 infusions, 1 reaction, grade 3.
    t = rows(path, "SELECT * FROM marts.reaction_rate_by_tumor_type")
    assert [(r["tumor_type"], r["infusions"], r["reaction_infusions"], r["grade3plus_infusions"], r["patients"])
            for r in t] == [("hcc", 2, 1, 1, 1)]
    # Cycles stay 1 and 2 (the cycle-7 version is older than the current one).
    c = by(rows(path, "SELECT * FROM marts.reaction_rate_by_cycle"), "cycle")
    assert sorted(c) == [1, 2]
    assert (c[1]["reaction_infusions"], c[1]["grade3plus_infusions"]) == (1, 1)
    assert one(path, "SELECT versions FROM core.current_patients")["versions"] == 2


def test_same_recorded_at_later_ingestion_wins(home):
    # Same key and recorded_at in two batches (ingestion would quarantine a real conflict,
    # but the tie rule must still be deterministic): the later ingested_at wins.
    same = "2025-05-01T10:00:00+08:00"
    write_batch(home, "b1", ingested_at="2025-06-01T00:00:00Z",
                patients=[patient("P1", tumor_type="npc", recorded_at=same)])
    write_batch(home, "b2", ingested_at="2025-06-02T00:00:00Z",
                patients=[patient("P1", tumor_type="sclc", recorded_at=same)])
    path = build_home(home)
    assert one(path, "SELECT tumor_type FROM core.current_patients")["tumor_type"] == "sclc"


def test_patients_column_counts_distinct_patients_per_group(home):
    # P1: cycles 1 and 2; P2: cycle 1 only; same record keys at two sites are two patients.
    write_batch(home, "a1", site_id="SITE-A", patients=[patient("P1"), patient("P2")],
                infusions=[infusion("I1", "P1", cycle=1),
                           infusion("I2", "P1", cycle=2, started_at="2025-01-31T09:00:00+08:00"),
                           infusion("I3", "P2", cycle=1)])
    write_batch(home, "b1", site_id="SITE-B", patients=[patient("P1")],
                infusions=[infusion("I1", "P1", cycle=1)])
    path = build_home(home)
    c = by(rows(path, "SELECT * FROM marts.reaction_rate_by_cycle"), "cycle")
    # cycle 1: A/I1 (A/P1), A/I3 (A/P2), B/I1 (B/P1) -> 3 infusions, 3 patients
    # cycle 2: A/I2 (A/P1) -> 1 infusion, 1 patient
    assert (c[1]["infusions"], c[1]["patients"]) == (3, 3)
    assert (c[2]["infusions"], c[2]["patients"]) == (1, 1)
    s = by(rows(path, "SELECT * FROM marts.reaction_rate_by_site"), "site_id")
    assert (s["SITE-A"]["infusions"], s["SITE-A"]["patients"]) == (3, 2)
    assert (s["SITE-B"]["infusions"], s["SITE-B"]["patients"]) == (1, 1)
