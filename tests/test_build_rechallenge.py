"""Warehouse build: index reaction, rechallenge and its outcome tiers (marts.rechallenge_outcomes).

Every expected figure is worked out by hand from the events written here.
"""
from __future__ import annotations

import pytest

from eventkit import build_home, infusion, patient, reaction, rows, write_batch
from safety_ledger.home import Home

JAN10 = "2025-01-10T09:00:00+08:00"
JAN31 = "2025-01-31T09:00:00+08:00"
FEB21 = "2025-02-21T09:00:00+08:00"
MAR14 = "2025-03-14T09:00:00+08:00"
PREMED = ["dexamethasone", "diphenhydramine"]


@pytest.fixture
def path(tmp_path):
    home = Home(tmp_path / "home")
    pts, infs, reacts = [], [], []

    def add(pkey, *infusions_):
        pts.append(patient(pkey))
        for n, (started, kw, grades) in enumerate(infusions_, start=1):
            ref = f"{pkey}-I{n}"
            infs.append(infusion(ref, pkey, cycle=n, started_at=started, **kw))
            for g_i, g in enumerate(grades, start=1):
                reacts.append(reaction(f"{ref}-R{g_i}", ref, grade=g))

    ext = dict(protocol="extended", premedication=PREMED)
    # tolerated: index grade 2; rechallenge extended + premedicated, completed, no reaction
    add("PT", (JAN10, {}, [2]), (JAN31, ext, []))
    # breakthrough: index grade 1; rechallenge extended + premedicated, completed, reaction grade 2
    add("PB", (JAN10, {}, [1]), (JAN31, ext, [2]))
    # failed, not completed: index grade 2; rechallenge extended + premedicated, stopped, no reaction
    add("PFN", (JAN10, {}, [2]), (JAN31, dict(ext, completed=False), []))
    # failed by grade 3: index reactions grade 1 and 3 (max 3 -> '3+'); rechallenge
    # desensitization + premedicated, completed, reactions grade 1 and 3
    add("PF3", (JAN10, {}, [1, 3]), (JAN31, dict(protocol="desensitization", premedication=PREMED), [1, 3]))
    # not rechallenged: index grade 4, no later infusion
    add("PN", (JAN10, {}, [4]))
    # index is the SECOND infusion (the first had no reaction); the rechallenge is the
    # third (standard, no premedication, tolerated); the fourth (grade 4) plays no part.
    add("PX", (JAN10, {}, []), (JAN31, {}, [1]), (FEB21, {}, []), (MAR14, {}, [4]))
    # no reaction at all: not in the mart
    add("P0", (JAN10, {}, []), (JAN31, {}, []))
    write_batch(home, "b1", patients=pts, infusions=infs, reactions=reacts)
    return build_home(home)


def test_index_and_rechallenge_per_patient(path):
    got = {r["patient_key"]: r for r in rows(path, "SELECT * FROM core.patient_rechallenge")}
    assert sorted(got) == ["PB", "PF3", "PFN", "PN", "PT", "PX"]
    expect = {  # (index infusion, band, rechallenge infusion, outcome)
        "PT": ("PT-I1", "1-2", "PT-I2", "tolerated"),
        "PB": ("PB-I1", "1-2", "PB-I2", "breakthrough"),
        "PFN": ("PFN-I1", "1-2", "PFN-I2", "failed"),
        "PF3": ("PF3-I1", "3+", "PF3-I2", "failed"),
        "PN": ("PN-I1", "3+", None, None),
        "PX": ("PX-I2", "1-2", "PX-I3", "tolerated"),
    }
    assert {k: (v["index_infusion_ref"], v["index_grade_band"], v["rechallenge_infusion_ref"],
                v["rechallenge_outcome"]) for k, v in got.items()} == expect
    assert got["PF3"]["index_max_grade"] == 3
    assert got["PN"]["rechallenged"] is False and got["PN"]["protocol"] is None


def test_rechallenge_outcomes_mart(path):
    got = {(r["protocol"], r["premedicated"], r["index_grade_band"]): r
           for r in rows(path, "SELECT * FROM marts.rechallenge_outcomes")}
    cols = ("patients_with_index_reaction", "rechallenged", "tolerated", "breakthrough", "failed")
    assert {k: tuple(v[c] for c in cols) for k, v in got.items()} == {
        ("extended", True, "1-2"): (3, 3, 1, 1, 1),          # PT, PB, PFN
        ("desensitization", True, "3+"): (1, 1, 0, 0, 1),    # PF3
        ("standard", False, "1-2"): (1, 1, 1, 0, 0),         # PX
        (None, None, "3+"): (1, 0, 0, 0, 0),                 # PN, not rechallenged
    }
    # extended/premedicated/1-2: success (1 + 1) / 3.  Wilson 2 of 3, z^2 = 3.8414588:
    #   denominator 1 + z^2/3 = 2.2804863; centre numerator 2/3 + z^2/6 = 0.6666667 + 0.6402431 = 1.3069098
    #   half numerator z * sqrt((2/9)/3 + z^2/36) = 1.959964 * sqrt(0.0740741 + 0.1067072)
    #                                             = 1.959964 * 0.4251838 = 0.8333451
    #   low = 0.4735647 / 2.2804863 = 0.20766;  high = 2.1402549 / 2.2804863 = 0.93851
    e = got[("extended", True, "1-2")]
    assert e["success_rate"] == pytest.approx(2 / 3)
    assert round(e["ci_low"], 4) == 0.2077
    assert round(e["ci_high"], 4) == 0.9385
    # desensitization: 0 of 1.  centre = half = (z^2/2) / (1 + z^2) = 1.9207294 / 4.8414589 = 0.3967253
    #   -> low 0, high 2 * 0.3967253 = 0.7934507
    d = got[("desensitization", True, "3+")]
    assert d["success_rate"] == 0.0
    assert d["ci_low"] == 0.0  # exactly: at x = 0 the Wilson lower bound is 0
    assert round(d["ci_high"], 4) == 0.7935
    # standard: 1 of 1 -> low = 1 - 0.7934507 = 0.2065493, high 1
    s = got[("standard", False, "1-2")]
    assert s["success_rate"] == 1.0
    assert round(s["ci_low"], 4) == 0.2065
    assert s["ci_high"] == 1.0  # exactly: at x = n the Wilson upper bound is 1
    # not rechallenged: no denominator, so no rate and no interval
    n = got[(None, None, "3+")]
    assert (n["success_rate"], n["ci_low"], n["ci_high"]) == (None, None, None)
