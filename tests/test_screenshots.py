"""Headless-Chromium screenshots of every dashboard page, and the board pack's PDF pages as
PNG (issue 5 acceptance).  Runs in `make test`; .ci/run installs Debian's chromium and
poppler-utils first.  Outside CI, without Chromium, it is skipped (with the reason); in CI
a missing Chromium is a failure.

The home: the seed submission, two small synthetic sites and the literature drop, ingested
and built (so every page has data: rates, rechallenge, irAEs, signals, literature).  Each
page of dashboard/app.py's PAGES (read from its source, so new pages are included) must
show no exception and give a PNG that is not blank.  SCREENSHOTS_OUT=<dir> keeps the PNGs.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

import seed_expected as X
from safety_ledger.cli import main

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("screenshots", REPO / "scripts" / "screenshots.py")
screenshots = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(screenshots)


def _need(tool: str, package: str) -> str:
    exe = (os.environ.get("CHROMIUM") if tool == "chromium" else None) or shutil.which(tool)
    if exe:
        return exe
    if os.environ.get("CI"):
        pytest.fail(f"{tool} is missing in CI: .ci/run installs Debian's {package} before make test")
    pytest.skip(f"{tool} not installed (apt-get install -y {package}); CI installs it")


def _not_blank(png: Path, min_size=(600, 400)) -> None:
    from PIL import Image

    with Image.open(png) as im:
        assert im.width >= min_size[0] and im.height >= min_size[1], (png, im.size)
        small = im.convert("RGB").resize((200, max(1, 200 * im.height // im.width)))
    colours = small.getcolors(maxcolors=1 << 16) or []
    assert len(colours) > 20, f"{png}: {len(colours)} colours, looks blank"
    top = max(c for c, _ in colours)
    # a page is mostly white background, but not all of it
    assert top / (small.width * small.height) < 0.985, f"{png}: one colour covers it all"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    _need("chromium", "chromium")
    from safety_ledger import generator

    home = tmp_path_factory.mktemp("screens-home")
    shutil.copytree(REPO / X.LANDING_FOLDER, home / "landing" / X.SITE_ID / X.SUBMISSION_ID)
    generator.generate(home / "landing", sites=2, patients=60, seed=7, submissions_per_site=2,
                       progress=None)
    shutil.copytree(REPO / X.LITERATURE_FOLDER, home / "literature" / Path(X.LITERATURE_FOLDER).name)
    assert main(["--home", str(home), "ingest"]) == 0
    assert main(["--home", str(home), "ingest-literature"]) == 0
    assert main(["--home", str(home), "build"]) == 0
    return home


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    keep = os.environ.get("SCREENSHOTS_OUT")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        return Path(keep)
    return tmp_path_factory.mktemp("screens")


def test_every_dashboard_page(home, out):
    pages = screenshots.app_pages()
    assert {"Overview", "Reaction rates", "Rechallenge", "Signals and premedication"} <= {p[2] for p in pages}
    shots = screenshots.capture(home, out, width=1280, height=1800, timeout=60, progress=print)
    assert [s["name"] for s in shots] == [p[0] for p in pages]
    for s in shots:
        assert not s["exceptions"], f"{s['title']}: {s['exceptions']}"
        assert s["h1"], f"{s['title']}: no title"
        _not_blank(s["path"])


def test_board_pack_pdf_pages(home, out):
    pdftoppm = _need("pdftoppm", "poppler-utils")
    as_of = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    pack = out / "pack"
    for old in out.glob("pack-page-*.png"):
        old.unlink()
    assert main(["--home", str(home), "report", "--as-of", as_of, "--out", str(pack)]) == 0
    subprocess.run([pdftoppm, "-r", "60", "-png", str(pack / "report.pdf"), str(out / "pack-page")],
                   check=True, timeout=60)
    pngs = sorted(out.glob("pack-page-*.png"))
    assert len(pngs) >= 5  # stamp and overview, rates, sites, rechallenge, irAEs, ... definitions
    for png in pngs:
        _not_blank(png, min_size=(400, 600))
