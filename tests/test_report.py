"""The board pack (`safety-ledger report`, issue 5 item 8) on the seed case series.

The home gets the seed submission first and the literature drop later, so an as-of time
between the two must leave the literature out.  Expected figures are worked out by hand
from the seed (tests/seed_expected.py, samples/README.md):

    seed submission  4 patients + 15 infusions + 6 reactions            = 25 events, 1 batch
    literature drop  30 publications                                     = 30 events, 1 batch
    rechallenge      index reactions on MRN-0001..0004 = 4 patients; MRN-0003 had no later
                     infusion, so 3 rechallenged; all 3 completed with no grade 3+ reaction
                     (1 tolerated, 2 breakthrough) = 3 successes
    reaction rate    6 of 15 infusions = 40.0%, Wilson 95% 19.8-64.3% (samples/README.md)
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import seed_expected as X
from safety_ledger import report as R
from safety_ledger.cli import main
from safety_ledger.home import Home

REPO = Path(__file__).resolve().parents[1]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    home = tmp_path_factory.mktemp("report-home")
    shutil.copytree(REPO / X.LANDING_FOLDER, home / "landing" / X.SITE_ID / X.SUBMISSION_ID)
    assert main(["--home", str(home), "ingest"]) == 0
    time.sleep(1.1)
    between = _now()  # after the seed's ingest, before the literature's (whole seconds)
    time.sleep(1.1)
    shutil.copytree(REPO / X.LITERATURE_FOLDER, home / "literature" / Path(X.LITERATURE_FOLDER).name)
    assert main(["--home", str(home), "ingest-literature"]) == 0
    time.sleep(1.1)
    after = _now()
    out = tmp_path_factory.mktemp("packs")
    for name, as_of in (("a", after), ("b", after), ("early", between)):
        assert main(["--home", str(home), "report", "--as-of", as_of.isoformat(),
                     "--out", str(out / name)]) == 0
    return {"home": home, "out": out, "between": between, "after": after}


def _doc(folder: Path) -> dict:
    return json.loads((folder / "figures.json").read_text())


def test_same_as_of_gives_the_same_pack(seeded):
    a, b = seeded["out"] / "a", seeded["out"] / "b"
    assert _doc(a) == _doc(b)
    assert (a / "report.html").read_bytes() == (b / "report.html").read_bytes()
    assert (a / "report.pdf").read_bytes() == (b / "report.pdf").read_bytes()
    assert (a / "report.pdf").read_bytes().startswith(b"%PDF-")


def test_stamp_counts_the_events_and_batches_by_hand(seeded):
    stamp = _doc(seeded["out"] / "a")["stamp"]
    assert stamp["as_of"] == seeded["after"].isoformat()
    assert stamp["events_by_table"] == {"patients": 4, "infusions": 15, "reactions": 6, "iraes": 0,
                                        "retractions": 0, "literature": 30}
    assert stamp["events"] == 55
    assert stamp["batches"] == 2
    assert len(stamp["fingerprint"]) == 64
    html = (seeded["out"] / "a" / "report.html").read_text()
    assert stamp["fingerprint"] in html and "55 events used" in html


def test_earlier_as_of_leaves_the_later_ingest_out(seeded):
    early, late = _doc(seeded["out"] / "early"), _doc(seeded["out"] / "a")
    assert early["stamp"]["events"] == 25 and early["stamp"]["batches"] == 1
    assert early["stamp"]["events_by_table"]["literature"] == 0
    assert early["stamp"]["fingerprint"] != late["stamp"]["fingerprint"]
    assert early["figures"]["literature"] == []
    assert len(late["figures"]["literature"]) == 30


def test_fingerprint_is_sha256_of_the_sorted_file_lines(seeded):
    """Recomputed here from the files on disk, independently of the ledger's records."""
    import hashlib

    home = seeded["home"]
    lines = []
    for ledger in ("submissions", "literature_drops"):
        for f in (home / "events" / ledger).glob("*.parquet"):
            batch = f.stem
            lines.append(f"{batch} {ledger} {hashlib.sha256(f.read_bytes()).hexdigest()}")
            for table_dir in [*(home / "events").iterdir(), home / "quarantine"]:
                g = table_dir / f"{batch}.parquet"
                if table_dir.name not in ("submissions", "literature_drops") and g.is_file():
                    lines.append(f"{batch} {table_dir.name} {hashlib.sha256(g.read_bytes()).hexdigest()}")
    want = hashlib.sha256("".join(line + "\n" for line in sorted(lines)).encode()).hexdigest()
    assert _doc(seeded["out"] / "a")["stamp"]["fingerprint"] == want
    # seed: its ledger file + patients, infusions, reactions (nothing quarantined);
    # literature drop: its ledger file + literature
    assert len(lines) == 6
    assert _doc(seeded["out"] / "a")["stamp"]["files"] == 6


def test_rechallenge_figures_of_the_seed(seeded):
    fig = _doc(seeded["out"] / "a")["figures"]
    assert (fig["rechallenge"]["patients_with_index_reaction"], fig["rechallenge"]["rechallenged"],
            fig["rechallenge"]["successes"]) == (4, 3, 3)
    assert (fig["overview"]["infusions"], fig["overview"]["reaction_infusions"],
            fig["overview"]["grade3plus_infusions"], fig["overview"]["patients"]) == (15, 6, 3, 4)
    html = (seeded["out"] / "a" / "report.html").read_text()
    assert "Rechallenge success 100.0% (95% CI 43.9–100.0%) — 3 of 3 rechallenged patients" in html
    assert "4 patients with an index reaction, 1 not rechallenged" in html
    assert "Reaction rate 40.0% (95% CI 19.8–64.3%) — 6 of 15 infusions" in html
    assert "Grade 3+ rate 20.0% (95% CI 7.0–45.2%) — 3 of 15 infusions" in html


def test_rechallenge_by_protocol_table_in_the_pack(seeded):
    """Seed by hand (samples/README.md): MRN-0001 extended tolerated, MRN-0004 extended
    breakthrough, MRN-0002 stepwise breakthrough, all premedicated.  The paper's Table 4 read
    the same way: extended cases 1 and 4, stepwise case 2.  Wilson 2 of 2: [2/(2 + z^2), 1] =
    [2/5.8414589, 1] = [34.2%, 100%]; 1 of 1: [1/4.8414589, 1] = [20.7%, 100%]."""
    fig = _doc(seeded["out"] / "a")["figures"]["rechallenge_by_protocol"]
    # source, protocol, rechallenged, tolerated, breakthrough, failed, successes, premedicated
    want = [["standard", 0, 0, 0, 0, 0, 0], ["extended", 2, 1, 1, 0, 2, 2],
            ["stepwise", 1, 0, 1, 0, 1, 1], ["desensitization", 0, 0, 0, 0, 0, 0]]
    assert fig == [["warehouse"] + w for w in want] + [["Seed case series, Table 4"] + w for w in want]
    html = (seeded["out"] / "a" / "report.html").read_text()
    assert "<h3>Success by protocol</h3>" in html
    section = html[html.index('<section id="rechallenge"'):html.index('<section id="irae"')]
    from markupsafe import escape

    assert str(escape(R.DEFINITIONS["rechallenge_protocol"])) in section
    assert str(escape(R.DEFINITIONS["rechallenge_reference"])) in section
    cells = ("<td>extended</td><td>Seed case series, Table 4 (published): case 1, case 4</td>"
             "<td>2</td><td>2 of 2</td><td>100.0%</td><td>34.2–100.0%</td><td>1</td><td>1</td>"
             "<td>0</td><td>2</td>")
    assert cells in section
    assert ("<td>stepwise</td><td>This warehouse</td><td>1</td><td>1 of 1</td><td>100.0%</td>"
            "<td>20.7–100.0%</td>") in section
    assert "<td>desensitization</td><td>This warehouse</td><td>0</td><td>0 of 0</td><td>—</td><td>—</td>" \
        in section
    assert "extended · paper, Table 4 (2/2)" in section  # the chart's labels
    assert "stepwise · this warehouse (1/1)" in section


def test_pack_is_self_contained_and_covers_every_section(seeded):
    html = (seeded["out"] / "a" / "report.html").read_text()
    for title in ("Reproducibility stamp", "Overview", "Open signals", "Reaction rates", "Site comparison",
                  "Rechallenge", "irAE trends", "Signals and premedication", "Literature",
                  "Data completeness per site", "Definitions"):
        assert f">{title}</h2>" in html, title
    assert html.count("<svg") >= 10  # rates (cycle, tumor type, regimen, grade 3+ by site), sites x2, ...
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") \
        .replace('xmlns:xlink="http://www.w3.org/1999/xlink"', "")
    from markupsafe import escape

    for text in R.DEFINITIONS.values():
        assert str(escape(text)) in html
    # data completeness of the seed site: 25 rows = 25 events, 0 duplicates, 0 quarantined
    [site] = _doc(seeded["out"] / "a")["figures"]["completeness"]
    assert site[:9] == [X.SITE_ID, X.SUBMISSION_ID, "accepted", 1, 0, 25, 25, 0, 0]


def test_pdf_is_dated_at_the_as_of_time(seeded):
    pdfinfo = shutil.which("pdfinfo")
    if pdfinfo is None:
        if os.environ.get("CI"):
            pytest.fail("pdfinfo (poppler-utils) missing in CI: .ci/run installs it")
        pytest.skip("pdfinfo (poppler-utils) not installed")
    info = subprocess.run([pdfinfo, "-isodates", str(seeded["out"] / "a" / "report.pdf")],
                          capture_output=True, text=True, check=True).stdout
    stamp = seeded["after"].strftime("%Y-%m-%dT%H:%M:%S")
    dates = [line for line in info.splitlines() if line.startswith(("CreationDate", "ModDate"))]
    assert len(dates) == 2 and all(stamp in line for line in dates), info


def test_the_published_warehouse_is_not_touched(seeded):
    assert not Home(seeded["home"]).warehouse.exists()  # the home was never built; the report
    # built its own as-of warehouse in a temporary folder


@pytest.mark.parametrize("as_of,words", [
    ("yesterday", "is not an ISO 8601 time"),
    ("2025-06-05T00:00:00", "needs an offset"),
    ("2000-01-01T00:00:00+00:00", "nothing to report"),
    ("2999-01-01T00:00:00+00:00", "is in the future"),
])
def test_a_users_mistake_is_one_line_and_exit_2(seeded, tmp_path, as_of, words):
    proc = subprocess.run([sys.executable, "-m", "safety_ledger.cli", "--home", str(seeded["home"]),
                           "report", "--as-of", as_of, "--out", str(tmp_path / "pack")],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "pack").exists()


def test_an_empty_home_has_nothing_to_report(tmp_path):
    rc = main(["--home", str(tmp_path / "empty"), "report", "--as-of", "2025-06-05T00:00:00+00:00",
               "--out", str(tmp_path / "pack")])
    assert rc == 2


def test_report_module_imports_no_streamlit_airflow_or_dashboard():
    code = ("import sys, safety_ledger.report, safety_ledger.cli; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('streamlit', 'airflow', 'dashboard')); "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
