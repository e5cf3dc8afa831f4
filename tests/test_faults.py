"""Faults survived: a process killed at several points of ingest leaves nothing half
ingested and the next run completes it; two ingests at once never double-ingest; a full
disk gives a clear error and no damage. The processes are real subprocesses, killed with
SIGKILL by the fault-injection points of safety_ledger/faults.py."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from safety_ledger import event_store
from safety_ledger.cli import main
from safety_ledger.home import Home
from safety_ledger.verify import verify

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "samples" / "landing" / "SEED-CASES"


def run(home: Path, *args, fault: str | None = None, wait=True):
    env = {**os.environ, "SAFETY_LEDGER_HOME": str(home)}
    env.pop("SAFETY_LEDGER_FAULT", None)
    if fault:
        env["SAFETY_LEDGER_FAULT"] = fault
    cmd = [sys.executable, "-m", "safety_ledger.cli", *args]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    return p.communicate(timeout=300) + (p.returncode,) if wait else p


@pytest.fixture
def home(tmp_path):
    h = Home(tmp_path / "home")
    shutil.copytree(SEED, h.landing / "SEED-CASES")
    return h


@pytest.mark.parametrize("point", ["mid_write", "before_ledger"])
def test_killed_ingest_leaves_nothing_visible_and_the_next_run_completes(home, point):
    out, err, code = run(home.root, "ingest", fault=point)
    assert code == -signal.SIGKILL
    assert event_store.read_ledger(home) == []                  # nothing committed
    assert event_store.committed_files(home, "infusions") == []  # so nothing a build reads
    assert main(["--home", str(home.root), "ingest"]) == 0      # the next run, in this process
    [row] = event_store.read_ledger(home)
    assert (row["status"], row["rows"], row["events"]) == ("accepted", 25, 25)
    assert list(home.root.rglob(".*.tmp")) == []                 # the killed writer's temporaries swept
    report = verify(home)
    assert report.ok, report.problems
    assert report.uncommitted == []                              # leftovers replaced by the same batch


def test_two_ingests_at_once_ingest_once(home):
    procs = [run(home.root, "ingest", wait=False) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    text = "".join(o for o, _ in outs)
    assert text.count("accepted  SEED-CASES") == 1
    assert text.count("skipped   SEED-CASES") == 1
    assert len(event_store.read_ledger(home)) == 1
    assert verify(home).ok


def test_full_disk_is_a_clear_error_and_no_damage(home, monkeypatch, capsys):
    monkeypatch.setenv("SAFETY_LEDGER_FAULT", "disk_full")
    assert main(["--home", str(home.root), "ingest"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    assert "run the command again" in err
    assert event_store.read_ledger(home) == []
    monkeypatch.delenv("SAFETY_LEDGER_FAULT")
    assert main(["--home", str(home.root), "ingest"]) == 0
    assert verify(home).ok and len(event_store.read_ledger(home)) == 1


def test_verify_detects_a_changed_event_file(home, capsys):
    assert main(["--home", str(home.root), "ingest"]) == 0
    assert main(["--home", str(home.root), "verify"]) == 0
    # the seed wrote 3 event files (patients, infusions, reactions) and no quarantine file
    assert "1 batches, 3 files checked: all intact" in capsys.readouterr().out
    victim = next(home.events.glob("infusions/*.parquet"))
    victim.write_bytes(victim.read_bytes()[:-10])
    assert main(["--home", str(home.root), "verify"]) == 1
    assert f"events/infusions/{victim.name} has changed since it was committed" in capsys.readouterr().out
