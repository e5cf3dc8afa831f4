"""Screenshot every dashboard page with headless Chromium.

    uv run python scripts/screenshots.py [--home DIR | --fixture] [--out screenshots]

Starts `streamlit run dashboard/app.py` headless on a free port against the given
$SAFETY_LEDGER_HOME (default: the environment's, else ./var), waits for it to answer,
takes one screenshot per page registered in app.py's PAGES (read from its source) into
<out>/<page>.png, and stops the server it started.  Exits 1 if a page showed an exception.
--fixture writes the small hand-made warehouse of tests/test_dashboard.py into a new
temporary home first, so the pictures can be checked against known figures.

Chromium: Debian's (`apt-get install -y chromium`), or $CHROMIUM.  Chromium's own
`--screenshot --virtual-time-budget=...` fires at the page's load event, before
Streamlit's script run has come back over its websocket: every picture would be a blank
page.  So each page is loaded in headless Chromium driven over its DevTools pipe
(`--remote-debugging-pipe`, no extra package): wait until the app says its script is
not running and every chart has drawn, grow the viewport to the page's full height,
then capture.
"""
from __future__ import annotations

import argparse
import base64
import fcntl
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"

def app_pages(app: Path = APP) -> list[tuple[str, str, str]]:
    """(file name, url path, title) of every page registered in dashboard/app.py's PAGES,
    read from its source (no Streamlit run), so a page added there is photographed too.
    The default page is served at the root ("" url path); its file name is its url_path."""
    import ast

    tree = ast.parse(app.read_text(encoding="utf-8"))
    pages = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "PAGES"
                                                     for t in node.targets)):
            continue
        for call in ast.walk(node.value):
            if not (isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "Page"):
                continue
            kw = {k.arg: ast.literal_eval(k.value) for k in call.keywords
                  if k.arg in ("title", "url_path", "default")}
            script = ast.literal_eval(call.args[0]) if call.args else ""
            url_path = kw.get("url_path") or Path(script).stem
            title = kw.get("title") or Path(script).stem
            pages.append((url_path, "" if kw.get("default") else url_path, title))
    if not pages:
        raise RuntimeError(f"no st.Page(...) found in PAGES of {app}")
    return pages


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"streamlit did not answer at {base} within {timeout:.0f}s")


def write_fixture(home: Path) -> None:
    spec = importlib.util.spec_from_file_location("dashboard_fixture",
                                                  ROOT / "tests" / "test_dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_warehouse(home / "warehouse" / "safety.duckdb")


def chromium() -> str:
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        sys.exit("No Chromium: apt-get update && apt-get install -y chromium (or set $CHROMIUM)")
    return exe


class Chromium:
    """Headless Chromium over --remote-debugging-pipe (fd 3: commands in, fd 4: replies)."""

    def __init__(self, exe: str, width: int, height: int):
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def wire_fds() -> None:  # in the child: its fd 3 and 4 are the two pipe ends
            a = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--hide-scrollbars", "--remote-debugging-pipe",
             f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
             "about:blank"],
            preexec_fn=wire_fds, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60.0) -> dict:
        self._id += 1
        msg: dict = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buf:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"Chromium did not answer {method}")
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed its DevTools pipe")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for fd in (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


# Ready: the app's script has finished, the page has a title, and every chart has drawn.
READY_JS = """(() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const main = document.querySelector('[data-testid="stMain"]');
  const charts = document.querySelectorAll('.vega-embed').length;
  const drawn = document.querySelectorAll('.vega-embed svg, .vega-embed canvas').length;
  return JSON.stringify({
    state: app ? app.getAttribute('data-test-script-state') : null,
    title: document.querySelectorAll('h1').length,
    charts: charts, drawn: drawn,
    height: main ? main.scrollHeight : document.documentElement.scrollHeight,
    exceptions: Array.from(document.querySelectorAll('[data-testid="stException"]'))
                     .map(e => e.innerText.slice(0, 400)),
    h1: Array.from(document.querySelectorAll('h1')).map(e => e.innerText),
  });
})()"""


def screenshot(browser: Chromium, url: str, out: Path, *, full_page: bool,
               timeout: float = 60.0) -> dict:
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget",
                           {"targetId": target, "flatten": True})["sessionId"]
    try:
        metrics = {"width": browser.width, "height": browser.height, "deviceScaleFactor": 1,
                   "mobile": False}
        browser.send("Emulation.setDeviceMetricsOverride", metrics, session)
        browser.send("Page.enable", session=session)
        browser.send("Page.navigate", {"url": url}, session)
        deadline = time.monotonic() + timeout
        last, stable = None, 0
        while True:
            value = browser.send("Runtime.evaluate", {"expression": READY_JS,
                                                      "returnByValue": True},
                                 session)["result"].get("value")
            state = json.loads(value) if value else {}
            ready = (state.get("state") == "notRunning" and state.get("title", 0) > 0
                     and state.get("drawn", 0) >= state.get("charts", 0))
            stable = stable + 1 if ready and state == last else 0
            last = state
            if stable >= 3:  # unchanged for three polls: charts laid out
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not ready after {timeout:.0f}s: {state}")
            time.sleep(0.5)
        if full_page and state.get("height", 0) > browser.height:
            metrics["height"] = int(state["height"]) + 40
            browser.send("Emulation.setDeviceMetricsOverride", metrics, session)
            time.sleep(1.5)  # let the charts re-lay out at the new size
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session)
        out.write_bytes(base64.b64decode(shot["data"]))
        return state
    finally:
        browser.send("Target.closeTarget", {"targetId": target})


def capture(home: Path, out: Path, *, width: int = 1400, height: int = 1800,
            full_page: bool = True, timeout: float = 90.0, pages: list[str] | None = None,
            port: int = 0, progress=print) -> list[dict]:
    """Serve the dashboard on `home`, screenshot each page of app.py into <out>/<page>.png;
    return one dict per page: name, title, path, and what the page showed (charts drawn,
    h1 titles, the text of any exception box)."""
    exe = chromium()
    home = Path(home).resolve()
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SAFETY_LEDGER_HOME=str(home))
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    log = open(out / "streamlit.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    progress(f"streamlit pid {proc.pid} on {base}, SAFETY_LEDGER_HOME={home}")
    browser = None
    shots = []
    try:
        wait_healthy(base, proc)
        browser = Chromium(exe, width, height)
        for name, url_path, title in app_pages():
            if pages and name not in pages:
                continue
            path = out / f"{name}.png"
            state = screenshot(browser, f"{base}/{url_path}", path, full_page=full_page,
                               timeout=timeout)
            shots.append({"name": name, "title": title, "path": path, **state})
            progress(f"{path}  ({path.stat().st_size:,} bytes, {state.get('charts', 0)} charts"
                     + (f", {len(state['exceptions'])} EXCEPTION(S)" if state.get("exceptions") else "")
                     + ")")
    finally:
        if browser is not None:
            browser.close()
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the session this script started
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--home", type=Path, help="SAFETY_LEDGER_HOME to show "
                     "(default: $SAFETY_LEDGER_HOME, else ./var)")
    src.add_argument("--fixture", action="store_true",
                     help="show the hand-made test warehouse, in a new temporary home")
    ap.add_argument("--out", type=Path, default=ROOT / "screenshots")
    ap.add_argument("--port", type=int, default=0, help="default: a free port")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=1800)
    ap.add_argument("--viewport-only", action="store_true",
                    help="capture the window only (default: the whole page)")
    ap.add_argument("--timeout", type=float, default=90.0, help="seconds per page")
    ap.add_argument("--pages", nargs="*", help="only these pages (file names)")
    args = ap.parse_args(argv)

    chromium()  # says how to install it, before anything starts
    tmp_home = None
    if args.fixture:
        tmp_home = Path(tempfile.mkdtemp(prefix="safety-ledger-screens-"))
        write_fixture(tmp_home)
        home = tmp_home
    else:
        home = (args.home or Path(os.environ.get("SAFETY_LEDGER_HOME") or ROOT / "var"))
    try:
        shots = capture(home, args.out, width=args.width, height=args.height,
                        full_page=not args.viewport_only, timeout=args.timeout,
                        pages=args.pages, port=args.port)
    finally:
        if tmp_home is not None:
            shutil.rmtree(tmp_home, ignore_errors=True)
    return 1 if any(s.get("exceptions") for s in shots) else 0


if __name__ == "__main__":
    raise SystemExit(main())
