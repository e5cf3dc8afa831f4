"""Warehouse build: atomic publishing, and the order the models run in."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from eventkit import build_home, infusion, one, patient, write_batch
from safety_ledger import build as build_module
from safety_ledger.build import model_order, read_models
from safety_ledger.home import Home


def infusions_in(path: Path) -> int:
    return one(path, "SELECT sum(infusions) AS n FROM marts.reaction_rate_by_site")["n"]


def beside(path: Path) -> list[str]:
    """What is in the warehouse's folder, but the build lock file (which stays)."""
    return sorted(p.name for p in path.parent.iterdir() if p.name != f".{path.name}.build.lock")


def test_reader_of_the_old_file_keeps_working_while_a_new_build_is_published(tmp_path):
    home = Home(tmp_path / "home")
    write_batch(home, "b1", ingested_at="2025-06-01T00:00:00Z",
                patients=[patient("P1")], infusions=[infusion("I1", "P1")])
    path = build_home(home)
    old = duckdb.connect(str(path), read_only=True)
    try:
        assert old.execute("SELECT sum(infusions) FROM marts.reaction_rate_by_site").fetchone()[0] == 1
        write_batch(home, "b2", ingested_at="2025-06-02T00:00:00Z",
                    infusions=[infusion("I2", "P1", cycle=2, started_at="2025-01-31T09:00:00+08:00")])
        assert build_home(home) == path  # published over the file `old` holds open
        # The old reader still reads the old, whole file: no error, old figures.
        assert old.execute("SELECT sum(infusions) FROM marts.reaction_rate_by_site").fetchone()[0] == 1
        assert old.execute("SELECT count(*) FROM raw.infusions").fetchone()[0] == 1
        # Meanwhile a new connection in another process sees the new figures, no lock error.
        # (In this process, duckdb.connect(path) would hand back `old`'s cached instance.)
        code = ("import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
                "print(c.execute('SELECT sum(infusions) FROM marts.reaction_rate_by_site').fetchone()[0])")
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                             check=True, timeout=120)
        assert out.stdout.strip() == "2"
    finally:
        old.close()
    # Afterwards a new connection here sees the new figures too.
    assert infusions_in(path) == 2
    # Nothing is left beside the warehouse: no temporary file, no WAL.
    assert beside(path) == [path.name]


def test_failed_build_leaves_the_published_file_untouched(tmp_path, monkeypatch):
    home = Home(tmp_path / "home")
    write_batch(home, "b1", patients=[patient("P1")], infusions=[infusion("I1", "P1")])
    path = build_home(home)
    before = path.read_bytes()
    # A copy of the transforms with one broken mart.
    transforms = tmp_path / "transforms"
    shutil.copytree(build_module.TRANSFORMS_DIR, transforms)
    (transforms / "marts" / "zz_broken.sql").write_text(
        "CREATE OR REPLACE TABLE marts.zz_broken AS SELECT * FROM core.no_such_table;\n")
    monkeypatch.setattr(build_module, "TRANSFORMS_DIR", transforms)
    write_batch(home, "b2", ingested_at="2025-06-02T00:00:00Z", infusions=[infusion("I2", "P1", cycle=2)])
    with pytest.raises(RuntimeError, match="marts.zz_broken"):
        build_home(home)
    assert path.read_bytes() == before
    assert beside(path) == [path.name]
    assert infusions_in(path) == 1


def test_build_killed_before_publishing(tmp_path):
    # SAFETY_LEDGER_FAULT=before_publish kills the build (SIGKILL) once the new file is
    # complete but not yet renamed: the published warehouse is the old one, whole.
    home = Home(tmp_path / "home")
    write_batch(home, "b1", patients=[patient("P1")], infusions=[infusion("I1", "P1")])
    path = build_home(home)
    write_batch(home, "b2", ingested_at="2025-06-02T00:00:00Z", infusions=[infusion("I2", "P1", cycle=2)])
    code = ("import sys; from pathlib import Path; from safety_ledger.build import build; "
            "from safety_ledger.home import Home; build(Home(Path(sys.argv[1])))")
    env = {**os.environ, "SAFETY_LEDGER_FAULT": "before_publish"}
    done = subprocess.run([sys.executable, "-c", code, str(home.root)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert infusions_in(path) == 1
    left = [n for n in beside(path) if n != path.name]
    assert len(left) == 1 and left[0].endswith(".building"), left
    # The next build removes the leftover and publishes.
    lines: list[str] = []
    build_module.build(home, progress=lines.append)
    assert "removed 1 temporary file(s) of an interrupted build" in lines
    assert beside(path) == [path.name]
    assert infusions_in(path) == 2


def write_models(root: Path, stage: str, models: dict[str, str]) -> None:
    (root / stage).mkdir(parents=True)
    for name, body in models.items():
        (root / stage / f"{name}.sql").write_text(
            f"CREATE OR REPLACE VIEW {stage}.{name} AS {body};\n")


def test_models_run_in_dependency_order_then_file_name_order(tmp_path):
    write_models(tmp_path, "core", {
        "a_uses_c": "SELECT * FROM core.c_base",
        "b_alone": "SELECT 1 AS x",
        "c_base": "SELECT 1 AS x  -- core.b_alone in a comment is not a dependency",
        "d_uses_a": "SELECT * FROM core.a_uses_c JOIN staging.stg_x USING (x)",
    })
    order = [m.name for m in model_order(read_models("core", tmp_path))]
    assert order == ["b_alone", "c_base", "a_uses_c", "d_uses_a"]


def test_model_cycle_and_misnamed_model_are_errors(tmp_path):
    write_models(tmp_path, "core", {"a": "SELECT * FROM core.b", "b": "SELECT * FROM core.a"})
    with pytest.raises(ValueError, match="cycle"):
        model_order(read_models("core", tmp_path))
    (tmp_path / "marts").mkdir()
    (tmp_path / "marts" / "x.sql").write_text("CREATE OR REPLACE TABLE marts.y AS SELECT 1;\n")
    with pytest.raises(ValueError, match="marts.x"):
        read_models("marts", tmp_path)


def test_the_shipped_models_are_well_formed():
    for stage in build_module.STAGES:
        models = model_order(read_models(stage))
        assert models, stage
