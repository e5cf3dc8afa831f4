"""Rechallenge success by protocol (marts.rechallenge_by_protocol, issue 5 item 4): the
build on a hand-made event set, the seed against samples/README.md, the paper's Table 4
reference rows, and the Rechallenge page's section under AppTest.

Every expected figure is worked out by hand, in the comments, from the events written here,
from samples/README.md or from the paper's Table 4 (/work/shared/seed/000_acf6ee2aaa7f1d6e.txt).

Wilson 95% interval, z = 1.959964, z^2 = 3.8414589 (samples/README.md):
  k = n:  [n / (n + z^2), 1]         1/1 -> [1/4.8414589, 1] = [0.2065, 1]
                                     2/2 -> [2/5.8414589, 1] = [0.3424, 1]
                                     3/3 -> [3/6.8414589, 1] = [0.4385, 1]
  k = 0:  [0, z^2 / (n + z^2)]       0/1 -> [0, 3.8414589/4.8414589] = [0, 0.7935]
  k = 2, n = 3 (tests/test_build_rechallenge.py works it out in full):
          1 + z^2/3 = 2.2804863; centre numerator 2/3 + z^2/6 = 1.3069098;
          half numerator z * sqrt(2/27 + z^2/36) = 1.959964 * 0.4251838 = 0.8333451
          -> [0.4735647 / 2.2804863, 2.1402549 / 2.2804863] = [0.2077, 0.9385]
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import seed_expected as X
from eventkit import build_home, infusion, patient, reaction, rows, write_batch
from safety_ledger.cli import main
from safety_ledger.contract import PROTOCOLS
from safety_ledger.home import Home

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "dashboard" / "app.py"
PAPER = "Seed case series, Table 4"

JAN10 = "2025-01-10T09:00:00+08:00"
JAN31 = "2025-01-31T09:00:00+08:00"
FEB21 = "2025-02-21T09:00:00+08:00"
PREMED = ["dexamethasone", "diphenhydramine"]


def _patient(pts, infs, reacts, pkey, *infusions_):
    pts.append(patient(pkey))
    for n, (started, kw, grades) in enumerate(infusions_, start=1):
        ref = f"{pkey}-I{n}"
        infs.append(infusion(ref, pkey, cycle=n, started_at=started, **kw))
        for g_i, g in enumerate(grades, start=1):
            reacts.append(reaction(f"{ref}-R{g_i}", ref, grade=g))


@pytest.fixture(scope="module")
def events_home(tmp_path_factory):
    """Eight patients at two sites; index reaction on the first infusion unless said.

    SITE-A
      S1  rechallenge standard, completed, no reaction                -> tolerated
      S2  rechallenge standard, NOT completed, no reaction            -> failed
      SX  rechallenge standard (2nd infusion), completed, no reaction -> tolerated;
          a 3rd infusion is desensitization: not the rechallenge, counts nowhere here
      E1  rechallenge extended + premedication, completed, no reaction     -> tolerated
      E2  rechallenge extended + premedication, completed, reaction grade 2 -> breakthrough
      W1  rechallenge stepwise + premedication, completed, reaction grade 3 -> failed
      N1  index reaction grade 3, no later infusion                   -> not rechallenged
    SITE-B
      E3  rechallenge extended, no premedication, completed, reaction grade 1 -> breakthrough

    By protocol (this warehouse):
      standard         S1, S2, SX: rechallenged 3; tolerated 2 (S1, SX), breakthrough 0,
                       failed 1 (S2); successes 2 -> 2/3, Wilson [0.2077, 0.9385];
                       premedicated 0
      extended         E1, E2, E3: rechallenged 3; tolerated 1, breakthrough 2, failed 0;
                       successes 3 -> 3/3, [0.4385, 1]; premedicated 2 (E1, E2)
      stepwise         W1: rechallenged 1; failed 1 (grade 3); successes 0 -> 0/1, [0, 0.7935];
                       premedicated 1
      desensitization  nobody (SX's desensitization infusion is not a rechallenge):
                       0 rechallenged, rate and interval NULL
      sum of rechallenged = 3 + 3 + 1 + 0 = 7 (N1 is in no row)
    """
    home = Home(tmp_path_factory.mktemp("rbp") / "home")
    ext = dict(protocol="extended", premedication=PREMED)
    a = ([], [], [])
    _patient(*a, "S1", (JAN10, {}, [2]), (JAN31, {}, []))
    _patient(*a, "S2", (JAN10, {}, [1]), (JAN31, dict(completed=False), []))
    _patient(*a, "SX", (JAN10, {}, [2]), (JAN31, {}, []),
             (FEB21, dict(protocol="desensitization", premedication=PREMED), [4]))
    _patient(*a, "E1", (JAN10, {}, [2]), (JAN31, ext, []))
    _patient(*a, "E2", (JAN10, {}, [3]), (JAN31, ext, [2]))
    _patient(*a, "W1", (JAN10, {}, [2]), (JAN31, dict(protocol="stepwise", premedication=PREMED), [3]))
    _patient(*a, "N1", (JAN10, {}, [3]))
    write_batch(home, "a1", site_id="SITE-A", patients=a[0], infusions=a[1], reactions=a[2])
    b = ([], [], [])
    _patient(*b, "E3", (JAN10, {}, [2]), (JAN31, dict(protocol="extended"), [1]))
    write_batch(home, "b1", site_id="SITE-B", patients=b[0], infusions=b[1], reactions=b[2],
                ingested_at="2025-06-01T00:00:01Z")
    path = build_home(home)
    return {"home": home, "path": path}


COLS = ("rechallenged", "tolerated", "breakthrough", "failed", "successes", "premedicated")


def _by(path, source):
    return {r["protocol"]: r for r in rows(
        path, "SELECT * FROM marts.rechallenge_by_protocol WHERE source = ? ORDER BY protocol_order",
        [source])}


def test_warehouse_rows_by_protocol_by_hand(events_home):
    got = _by(events_home["path"], "warehouse")
    assert list(got) == list(PROTOCOLS)  # every protocol, in the contract's order, zeros kept
    assert {p: tuple(r[c] for c in COLS) for p, r in got.items()} == {
        "standard": (3, 2, 0, 1, 2, 0),         # S1, SX tolerated; S2 failed
        "extended": (3, 1, 2, 0, 3, 2),         # E1 tolerated; E2, E3 breakthrough
        "stepwise": (1, 0, 0, 1, 0, 1),         # W1 failed by grade 3
        "desensitization": (0, 0, 0, 0, 0, 0),  # SX's 3rd infusion is not its rechallenge
    }
    s, e, w, d = (got[p] for p in PROTOCOLS)
    assert s["success_rate"] == pytest.approx(2 / 3)
    assert (round(s["ci_low"], 4), round(s["ci_high"], 4)) == (0.2077, 0.9385)
    assert e["success_rate"] == 1.0
    assert (round(e["ci_low"], 4), e["ci_high"]) == (0.4385, 1.0)
    assert w["success_rate"] == 0.0
    assert (w["ci_low"], round(w["ci_high"], 4)) == (0.0, 0.7935)
    assert (d["success_rate"], d["ci_low"], d["ci_high"]) == (None, None, None)
    assert all(r["citation"] is None for r in got.values())


def test_rows_add_up_to_every_rechallenged_patient(events_home):
    # 7 rechallenged patients (S1, S2, SX, E1, E2, W1, E3); N1 was not rechallenged
    [tot] = rows(events_home["path"], "SELECT sum(rechallenged) AS n FROM marts.rechallenge_by_protocol "
                                      "WHERE source = 'warehouse'")
    assert tot["n"] == 7
    [other] = rows(events_home["path"], "SELECT sum(rechallenged) AS n FROM marts.rechallenge_outcomes")
    assert other["n"] == 7


# The paper's Table 4, counted by hand from the table as printed:
#   case 1 "infused over 2 h (instead of 1 h)" -> extended; "No hypersensitivity events",
#          "completed four further cycles" -> tolerated; premedicated (dexamethasone, ...)
#   case 2 "Stepwise infusion" -> stepwise; "Mild flushing", "full dose completed" -> breakthrough;
#          premedicated (methylprednisolone, ...)
#   case 4 "Extended infusion to 2 h" -> extended; "Only transient pruritus" -> breakthrough;
#          premedicated (dexamethasone, ...)
#   extended 2 rechallenged (1 tolerated, 1 breakthrough), 2 of 2 -> [0.3424, 1];
#   stepwise 1 (breakthrough), 1 of 1 -> [0.2065, 1]; standard, desensitization 0.
#   Total 3 of 3, as marts-v1 says of the seed ("3 of 3 successes").
PAPER_ROWS = {
    "standard": (0, 0, 0, 0, 0, 0),
    "extended": (2, 1, 1, 0, 2, 2),
    "stepwise": (1, 0, 1, 0, 1, 1),
    "desensitization": (0, 0, 0, 0, 0, 0),
}


def test_reference_rows_are_the_papers_table_4(events_home):
    # the events here have nothing to do with the seed: the reference rows are the same anyway
    got = _by(events_home["path"], PAPER)
    assert {p: tuple(r[c] for c in COLS) for p, r in got.items()} == PAPER_ROWS
    ext, step = got["extended"], got["stepwise"]
    assert (ext["success_rate"], round(ext["ci_low"], 4), ext["ci_high"]) == (1.0, 0.3424, 1.0)
    assert (step["success_rate"], round(step["ci_low"], 4), step["ci_high"]) == (1.0, 0.2065, 1.0)
    assert (ext["reference_cases"], step["reference_cases"]) == ("case 1, case 4", "case 2")
    assert got["standard"]["success_rate"] is None
    assert all("Table 4" in r["citation"] for r in got.values())
    cases = rows(events_home["path"], "SELECT case_no, treatment_cycle, infusion_adjustment "
                                      "FROM staging.ref_seed_table4 ORDER BY case_no")
    assert [(c["case_no"], c["treatment_cycle"]) for c in cases] == [
        (1, "Cycle 1"), (2, "Cycle 2"), (4, "Cycle 1")]
    assert cases[1]["infusion_adjustment"].startswith("Stepwise infusion: 10% dose over 30 min")


# ---------------------------------------------------------------------------- the seed


@pytest.fixture(scope="module")
def seed_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("rbp-seed")
    shutil.copytree(REPO / X.LANDING_FOLDER, home / "landing" / X.SITE_ID / X.SUBMISSION_ID)
    assert main(["--home", str(home), "ingest"]) == 0
    assert main(["--home", str(home), "build"]) == 0
    return home


def test_seed_rows_by_protocol_match_samples_readme(seed_home):
    """samples/README.md, marts.rechallenge_outcomes per patient: MRN-0001 extended, tolerated;
    MRN-0002 stepwise, breakthrough; MRN-0004 extended, breakthrough; all three premedicated;
    MRN-0003 not rechallenged.  By protocol: extended 2 (1 tolerated, 1 breakthrough),
    stepwise 1 (breakthrough), standard 0, desensitization 0."""
    path = Home(seed_home).warehouse
    ours = _by(path, "warehouse")
    assert {p: tuple(r[c] for c in COLS) for p, r in ours.items()} == {
        "standard": (0, 0, 0, 0, 0, 0),
        "extended": (2, 1, 1, 0, 2, 2),
        "stepwise": (1, 0, 1, 0, 1, 1),
        "desensitization": (0, 0, 0, 0, 0, 0),
    }
    # our coding of the seed and the paper's table, read independently, agree
    paper = _by(path, PAPER)
    assert {p: tuple(r[c] for c in COLS) for p, r in paper.items()} == PAPER_ROWS


# ---------------------------------------------------------------------------- the page


def _page(home, monkeypatch, **state) -> AppTest:
    monkeypatch.setenv("SAFETY_LEDGER_HOME", str(home.root if isinstance(home, Home) else home))
    at = AppTest.from_file(str(APP), default_timeout=120)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.switch_page("views/rechallenge.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _table(at):
    [df] = [df.value for df in at.dataframe if "Successes" in df.value.columns]
    return df


def _captions(at) -> str:
    return "\n".join(str(c.value) for c in at.caption)


def test_page_section_shows_both_sources_with_intervals(events_home, monkeypatch):
    at = _page(events_home["home"], monkeypatch)
    t = _captions(at)
    from safety_ledger.definitions import DEFINITIONS

    assert DEFINITIONS["rechallenge_protocol"] in t and DEFINITIONS["rechallenge_reference"] in t
    assert "All rechallenged patients of this warehouse." in t
    assert "Reference rows: Case series of five cadonilimab-induced" in t
    tab = _table(at)
    ours = tab[tab["Source"] == "this warehouse"]
    assert list(ours["Protocol"]) == list(PROTOCOLS)
    # (successes of rechallenged, rate, 95% CI) from the hand figures above, in percent
    assert [tuple(r) for r in ours[["Successes", "Success rate", "95% CI"]].values] == [
        ("2 of 3", "66.7%", "20.8–93.9%"),
        ("3 of 3", "100.0%", "43.9–100.0%"),
        ("0 of 1", "0.0%", "0.0–79.3%"),
        ("0 of 0", "—", "—"),
    ]
    assert list(ours["Premedicated"]) == ["0", "2", "1", "0"]
    paper = tab[tab["Source"].str.startswith("Seed case series, Table 4 (published)")]
    assert list(paper["Protocol"]) == list(PROTOCOLS)
    assert list(paper["Successes"]) == ["0 of 0", "2 of 2", "1 of 1", "0 of 0"]
    assert list(paper["95% CI"]) == ["—", "34.2–100.0%", "20.7–100.0%", "—"]
    assert "case 1, case 4" in paper["Source"].iloc[1]
    # the chart: one point per row with a denominator (3 of ours, 2 of the paper's)
    specs = [json.dumps(json.loads(c.proto.spec), ensure_ascii=False)
             for c in at.get("vega_lite_chart")]
    [spec] = [x for x in specs if "Protocol · source" in x]
    assert "standard · this warehouse (2/3)" in spec
    assert "extended · paper (published) (2/2)" in spec
    assert "stepwise · this warehouse (0/1)" in spec
    assert "desensitization · this warehouse" not in spec  # no denominator, not drawn
    assert "standard · paper" not in spec
    assert sum(b.label == "Download CSV" for b in at.get("download_button")) >= 3


def test_page_section_follows_the_site_filter(events_home, monkeypatch):
    """Site SITE-B: only E3 (extended, breakthrough, not premedicated) -> extended 1 of 1,
    [0.2065, 1]; the other protocols 0; the paper's rows unchanged."""
    at = _page(events_home["home"], monkeypatch, filter_site="SITE-B")
    tab = _table(at)
    ours = tab[tab["Source"] == "this warehouse"]
    assert list(ours["Successes"]) == ["0 of 0", "1 of 1", "0 of 0", "0 of 0"]
    assert list(ours["95% CI"]) == ["—", "20.7–100.0%", "—", "—"]
    assert list(ours["Premedicated"]) == ["0", "0", "0", "0"]
    paper = tab[tab["Source"] != "this warehouse"]
    assert list(paper["Successes"]) == ["0 of 0", "2 of 2", "1 of 1", "0 of 0"]
    assert "recomputed under the filters (site SITE-B)" in _captions(at)
