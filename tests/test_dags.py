"""The Airflow 3 DAGs of dags/: they parse, they are wired as documented, and they run for real.

Every Airflow call runs in a subprocess with its own AIRFLOW_HOME and SQLite metadata DB in a
temporary folder, so the tests never touch ~/airflow and never import Airflow into pytest itself.
`airflow db migrate` runs once per session; each test then runs `airflow dags test <dag_id>`
against its own $SAFETY_LEDGER_HOME. Durations are printed (see them with `pytest -s`).

Tests that need a part of the package or a sample that has not landed yet are skipped with that
reason; once the file exists they run against the real package.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
SAMPLES = REPO / "samples"
DAG_IDS = {"ingest_site_submissions", "ingest_literature", "build_warehouse", "verify_warehouse"}
AIRFLOW_BIN = Path(sys.executable).with_name("airflow")


def _airflow_cmd() -> list[str]:
    found = AIRFLOW_BIN if AIRFLOW_BIN.exists() else shutil.which("airflow")
    if not found:
        pytest.skip("the airflow command is not installed")
    return [str(found)]


def _needs(*relpaths: str) -> None:
    missing = [p for p in relpaths if not (REPO / p).exists()]
    assert not missing, f"missing from the repository: {', '.join(missing)}"


def _timed(label: str, fn):
    t0 = time.monotonic()
    result = fn()
    print(f"\n[timing] {label}: {time.monotonic() - t0:.1f} s")
    return result


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory) -> dict[str, str]:
    """The environment every Airflow subprocess runs with (no database yet)."""
    af_home = tmp_path_factory.mktemp("airflow_home")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AIRFLOW") and k != "SAFETY_LEDGER_HOME"}
    env.update({
        "AIRFLOW_HOME": str(af_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{af_home / 'airflow.db'}",
    })
    return env


@pytest.fixture(scope="session")
def airflow_db(airflow_env) -> Path:
    """`airflow db migrate`, once per session. Returns the SQLite metadata DB."""
    proc = _timed("airflow db migrate", lambda: subprocess.run(
        [*_airflow_cmd(), "db", "migrate"], env=airflow_env, capture_output=True, text=True,
        timeout=600))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    db = Path(airflow_env["AIRFLOW_HOME"]) / "airflow.db"
    assert db.exists()
    return db


@pytest.fixture
def ledger_home(tmp_path) -> Path:
    home = tmp_path / "ledger_home"
    for sub in ("landing", "literature"):
        (home / sub).mkdir(parents=True)
    return home


def dags_test(env: dict[str, str], dag_id: str, home: Path) -> tuple[str, str]:
    """`airflow dags test dag_id` with $SAFETY_LEDGER_HOME=home; asserts the run succeeded.

    Returns (run_id, output). The output is also kept next to the home, to read after a failure.
    """
    run_env = {**env, "SAFETY_LEDGER_HOME": str(home)}
    proc = _timed(f"airflow dags test {dag_id}", lambda: subprocess.run(
        [*_airflow_cmd(), "dags", "test", dag_id], env=run_env, capture_output=True, text=True,
        timeout=600))
    out = proc.stdout + proc.stderr
    log = home.parent / f"dags_test_{dag_id}.log"
    log.write_text(out)
    finished = re.search(r"DagRun Finished: dag_id=(\S+), .*?run_id=([^,\s]+),.*?state=(\w+)", out)
    assert proc.returncode == 0 and finished and finished.group(3) == "success", (
        f"airflow dags test {dag_id} rc={proc.returncode}, full log in {log}:\n{out[-4000:]}")
    assert finished.group(1) == dag_id
    return finished.group(2), out


def asset_events(db: Path, dag_id: str, run_id: str) -> list[str]:
    """Names of the assets updated by one DAG run (read straight from the metadata DB)."""
    with sqlite3.connect(db) as c:
        rows = c.execute(
            "SELECT a.name FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE e.source_dag_id = ? AND e.source_run_id = ? ORDER BY a.name",
            (dag_id, run_id)).fetchall()
    return [r[0] for r in rows]


def task_states(db: Path, dag_id: str, run_id: str) -> dict[str, str]:
    with sqlite3.connect(db) as c:
        rows = c.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
                         (dag_id, run_id)).fetchall()
    return dict(rows)


# --- parsing and wiring ----------------------------------------------------------------------

PARSE_SCRIPT = """
import json, sys
from pathlib import Path
# Airflow 3 parses a dags folder as a bundle: BundleDagBag puts the folder on sys.path (so the
# DAG files can `import assets`), as the DAG processor and the task runner do. The plain DagBag
# of Airflow 3.3 no longer takes include_examples (examples are their own bundle, switched off by
# AIRFLOW__CORE__LOAD_EXAMPLES=False) and does not touch sys.path.
from airflow.dag_processing.dagbag import BundleDagBag
dags = Path(sys.argv[1])
bag = BundleDagBag(dag_folder=dags, bundle_path=dags, bundle_name="dags-folder")
out = {"import_errors": {str(k): v for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    cond = getattr(dag.timetable, "asset_condition", None)
    out["dags"][dag_id] = {
        "timetable": type(dag.timetable).__name__,
        "schedule": getattr(dag.timetable, "expression", None),
        "catchup": dag.catchup,
        "condition": type(cond).__name__ if cond is not None else None,
        "schedule_assets": sorted(a.name for a in getattr(cond, "objects", []) or []),
        "outlets": {t.task_id: sorted(o.name for o in t.outlets) for t in dag.tasks},
    }
print("JSON:" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def parsed(airflow_env) -> dict:
    proc = _timed("parse dags folder (BundleDagBag)", lambda: subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPT, str(DAGS)], env=airflow_env, capture_output=True,
        text=True, timeout=300))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("JSON:"))
    return json.loads(line[len("JSON:"):])


def test_dag_folder_imports_without_errors(parsed):
    assert parsed["import_errors"] == {}
    assert set(parsed["dags"]) == DAG_IDS


def test_ingest_dags_are_time_scheduled_without_catchup_and_emit_their_asset(parsed):
    subs, lit = parsed["dags"]["ingest_site_submissions"], parsed["dags"]["ingest_literature"]
    assert subs["timetable"] == lit["timetable"] == "CronTriggerTimetable"
    assert subs["schedule"] == "*/15 * * * *"
    assert lit["schedule"] in ("@daily", "0 0 * * *")
    assert subs["catchup"] is False and lit["catchup"] is False
    assert subs["outlets"] == {"ingest": ["safety_ledger_submission_events"]}
    assert lit["outlets"] == {"ingest": ["safety_ledger_literature_events"]}


def test_build_warehouse_is_scheduled_on_either_asset(parsed):
    build = parsed["dags"]["build_warehouse"]
    assert build["timetable"] == "AssetTriggeredTimetable"
    assert build["condition"] == "AssetAny"
    assert build["schedule_assets"] == ["safety_ledger_literature_events",
                                        "safety_ledger_submission_events"]
    assert build["outlets"] == {"build": ["safety_ledger_warehouse"]}


def test_verify_warehouse_runs_weekly_without_catchup_and_emits_the_warehouse(parsed):
    verify = parsed["dags"]["verify_warehouse"]
    assert verify["timetable"] == "CronTriggerTimetable" and verify["schedule"] in ("@weekly", "0 0 * * 0")
    assert verify["catchup"] is False
    assert verify["outlets"] == {"verify": ["safety_ledger_warehouse"]}


def test_core_package_never_imports_airflow():
    offenders = []
    for py in (REPO / "safety_ledger").rglob("*.py"):
        for node in ast.walk(ast.parse(py.read_text(), filename=str(py))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "airflow" or n.startswith("airflow.") for n in names):
                offenders.append(f"{py.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


# --- real runs -------------------------------------------------------------------------------

def test_ingest_with_nothing_new_succeeds_without_updating_the_asset(airflow_env, airflow_db,
                                                                     ledger_home):
    _needs("safety_ledger/ingest.py")
    run_id, _ = dags_test(airflow_env, "ingest_site_submissions", ledger_home)
    assert task_states(airflow_db, "ingest_site_submissions", run_id) == {"ingest": "skipped"}
    assert asset_events(airflow_db, "ingest_site_submissions", run_id) == []


def test_rejected_submission_is_logged_and_the_run_succeeds(airflow_env, airflow_db,
                                                            ledger_home):
    _needs("safety_ledger/ingest.py", "samples/landing/SEED-CASES")
    src = next(p for p in (SAMPLES / "landing" / "SEED-CASES").iterdir() if p.is_dir())
    bad = ledger_home / "landing" / "SEED-CASES" / src.name
    shutil.copytree(src, bad)
    (bad / "manifest.json").write_text("{ this is not json")

    run_id, out = dags_test(airflow_env, "ingest_site_submissions", ledger_home)
    # the site's mistake, not the pipeline's: the task succeeds, the ledger row it wrote
    # updates the asset, and the log says who must do what
    assert task_states(airflow_db, "ingest_site_submissions", run_id) == {"ingest": "success"}
    assert asset_events(airflow_db, "ingest_site_submissions", run_id) == [
        "safety_ledger_submission_events"]
    assert f"REJECTED  SEED-CASES/{src.name}: " in out and "site SEED-CASES must fix" in out
    assert "must fix and send the submission again" in out


def test_seed_submission_end_to_end(airflow_env, airflow_db, ledger_home):
    _needs("safety_ledger/ingest.py", "safety_ledger/build.py", "samples/landing/SEED-CASES")
    duckdb = pytest.importorskip("duckdb")
    shutil.copytree(SAMPLES / "landing" / "SEED-CASES", ledger_home / "landing" / "SEED-CASES")

    run_id, _ = dags_test(airflow_env, "ingest_site_submissions", ledger_home)
    assert task_states(airflow_db, "ingest_site_submissions", run_id) == {"ingest": "success"}
    assert asset_events(airflow_db, "ingest_site_submissions", run_id) == [
        "safety_ledger_submission_events"]

    run_id, _ = dags_test(airflow_env, "build_warehouse", ledger_home)
    assert asset_events(airflow_db, "build_warehouse", run_id) == ["safety_ledger_warehouse"]

    warehouse = ledger_home / "warehouse" / "safety.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        got = con.execute(
            "SELECT sum(patients_with_index_reaction), sum(rechallenged), "
            "sum(tolerated + breakthrough) FROM marts.rechallenge_outcomes").fetchone()
    # The seed paper: 4 patients with an index reaction; cases 1, 2 and 4 rechallenged, all
    # three successfully; case 3 not rechallenged.
    assert tuple(int(x) for x in got) == (4, 3, 3)

    # the weekly proof: the published warehouse against a full replay of the same events
    run_id, out = dags_test(airflow_env, "verify_warehouse", ledger_home)
    assert task_states(airflow_db, "verify_warehouse", run_id) == {"verify": "success"}
    assert asset_events(airflow_db, "verify_warehouse", run_id) == ["safety_ledger_warehouse"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        relations = con.execute("SELECT count(*) FROM information_schema.tables "
                                "WHERE table_schema <> 'meta'").fetchone()[0]
    assert f"the same as a full replay of the same events ({relations} relations, " in out


def test_literature_end_to_end(airflow_env, airflow_db, ledger_home):
    _needs("safety_ledger/literature.py", "safety_ledger/build.py", "samples/literature")
    duckdb = pytest.importorskip("duckdb")
    shutil.copytree(SAMPLES / "literature", ledger_home / "literature", dirs_exist_ok=True)

    run_id, _ = dags_test(airflow_env, "ingest_literature", ledger_home)
    assert task_states(airflow_db, "ingest_literature", run_id) == {"ingest": "success"}
    assert asset_events(airflow_db, "ingest_literature", run_id) == [
        "safety_ledger_literature_events"]

    dags_test(airflow_env, "build_warehouse", ledger_home)
    with duckdb.connect(str(ledger_home / "warehouse" / "safety.duckdb"), read_only=True) as con:
        (n,) = con.execute("SELECT count(*) FROM marts.literature").fetchone()
    assert n == 30
