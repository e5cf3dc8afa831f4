"""The main job: fill an empty home with the seed submission, a few synthetic sites and
the literature drop, ingest them, build the warehouse, then serve the dashboard."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from .home import Home

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
DEMO_SITES = dict(sites=4, patients=800, seed=7)


def _copy_missing(src: Path, dst: Path, progress) -> None:
    """Copy each submission/drop folder of `src` that `dst` does not have yet."""
    for folder in sorted(p for p in src.rglob("manifest.json")):
        rel = folder.parent.relative_to(src)
        if not (dst / rel).exists():
            shutil.copytree(folder.parent, dst / rel)
            progress(f"  + {dst.name}/{rel}")


def fill_landing(home: Home, progress=print) -> None:
    from . import generator

    home.ensure()
    progress(f"filling {home.root}")
    _copy_missing(SAMPLES / "landing", home.landing, progress)
    _copy_missing(SAMPLES / "literature", home.literature_landing, progress)
    if not any(p.name.startswith("SITE-") for p in home.landing.iterdir()):
        progress(f"  generating {DEMO_SITES['sites']} synthetic sites")
        generator.generate(home.landing, **DEMO_SITES, progress=progress)


def demo(home: Home, serve: bool = True, port: int = 8501, progress=print) -> int:
    from .build import build
    from .ingest import ingest_landing
    from .literature import ingest_literature

    t0 = time.monotonic()
    fill_landing(home, progress)
    progress("ingesting site submissions")
    ingest_landing(home, progress=progress)
    progress("ingesting literature")
    ingest_literature(home, progress=progress)
    progress("building the warehouse")
    summary = build(home, progress=progress)
    progress(f"warehouse {summary.path} published; Data Docs at {home.data_docs / 'index.html'} "
             f"({time.monotonic() - t0:.0f} s)")
    if not serve:
        return 0
    progress(f"serving the dashboard on http://localhost:{port} (Ctrl-C to stop)")
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / "dashboard" / "app.py"),
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    return subprocess.call(cmd, env={**__import__("os").environ, "SAFETY_LEDGER_HOME": str(home.root)})
