"""`make bench`: generate, then measure the pipeline at 100 thousand, 1 million and 10
million events (an event = an accepted row), against two references over the same
events, and write bench/results.md.

    uv run python bench/run.py [--sizes 100k,1m,10m] [--work bench/data] [--out bench/results.md]

Per size, each step runs in its own child process, timed by wall clock, its peak RSS
read from wait4() (the child and everything it waited for):

  generate      bench/steps.py generate (safety_ledger.generator.generate), into <home>/landing
  ingest        bench/steps.py ingest: safety_ledger.ingest.ingest_landing in-process (its
                worker processes included), GX's share from safety_ledger.validation.STATS
  build         safety-ledger --home H build, a full replay into DuckDB (the warehouse is
                removed before each run, so every run replays every event)
  limit         bench/limit.py: one hand-written DuckDB query for the three reaction-rate marts
  peer          bench/peer.py: the same marts in pandas, as an analyst would write them
  dashboard     bench/steps.py dashboard: every page's queries, `--repeat` times
  1% batch      bench/steps.py extra: one new submission at each of a few sites, 1% of the events
  ingest 1%     as ingest
  build after   safety-ledger build again: the incremental build, which starts from the warehouse
                built before the 1% batch (a copy of it is put back before each run) and adds
                only the new batches; its log must say "incremental", else the run fails
  replay after  safety-ledger build --out F: a full replay of the same events into another
                file, its runs in turns with the incremental build's (so that a machine whose
                speed drifts weighs on both alike): the incremental build's target is a share
                of it.  bench/steps.py compare then checks the last incremental warehouse
                against the last replay, every relation and row (safety_ledger/warehouse_diff.py);
                a difference fails the run after the report is written

The build, the limit and the peer run `--runs` times (default 3) on the same events and
the median wall time is reported (the machine may be shared).  limit and peer are checked against the warehouse's marts (counts equal, rates within
1e-12); a mismatch fails the run after the report is written.  A size whose ingest,
projected from the throughput measured at the previous size, would take longer than
--max-ingest-minutes is not run; the report says so, with the projection.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PY = sys.executable
CLI = [str(Path(PY).with_name("safety-ledger"))] if Path(PY).with_name("safety-ledger").exists() \
    else [PY, "-m", "safety_ledger.cli"]
MARTS = {"reaction_rate_by_cycle": "cycle", "reaction_rate_by_tumor_type": "tumor_type",
         "reaction_rate_by_regimen": "regimen_class"}
COUNTS = ("infusions", "reaction_infusions", "grade3plus_infusions", "patients")
RATES = ("reaction_rate", "ci_low", "ci_high", "grade3plus_rate", "grade3plus_ci_low", "grade3plus_ci_high")
GB = 1024 ** 3

TARGETS = {  # issue 4: at 10M events, 2 cores, 24 GB
    "ingest_rows_per_s": 250_000,
    "peak_rss_bytes": 4 * GB,
    "build_over_limit": 3.0,
    "peer_over_build": 10.0,
    "incremental_over_full": 0.20,
    "query_p95_ms": 150.0,
}


# ---------------------------------------------------------------------------- sizes


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"size {text!r}: write e.g. 100k, 1m, 10m")
    return int(float(m.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2).lower()])


def label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def sites_for(events: int) -> int:
    """10 sites at 100k events, 20 at 1m, 40 at 10m (3 submissions each)."""
    return max(4, int(round(10 * (events / 100_000) ** 0.3)))


# ---------------------------------------------------------------------------- children


class StepFailed(RuntimeError):
    pass


def run_step(name: str, argv: list[str], log: Path, result_json: Path | None = None) -> dict:
    """Run one child; wall seconds, peak RSS (bytes) and its JSON result, if any."""
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"  {name}: {' '.join(argv[1:] if argv[0] == PY else argv)}", flush=True)
    load_before = os.getloadavg()[0]
    with open(log, "w") as out:
        t = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-20:])
        raise StepFailed(f"{name} exited with {proc.returncode}; last lines of {log}:\n{tail}")
    step = {"name": name, "seconds": wall, "peak_rss": usage.ru_maxrss * 1024,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "load_before": load_before, "load_after": os.getloadavg()[0]}
    if result_json is not None:
        step["result"] = json.loads(result_json.read_text())
    print(f"    {wall:.1f} s, peak RSS {step['peak_rss'] / 2**20:.0f} MiB, "
          f"load {load_before:.1f} -> {step['load_after']:.1f}", flush=True)
    return step


def calibrate(work: Path) -> float:
    """Events per generated patient, from a small run (2,000 patients, 10 sites)."""
    folder = work / "calibrate"
    shutil.rmtree(folder, ignore_errors=True)
    step = run_step("calibrate", [PY, str(BENCH / "steps.py"), "generate", "--landing", str(folder / "landing"),
                                  "--sites", "10", "--patients", "2000", "--seed", "7",
                                  "--json", str(folder / "summary.json")],
                    folder / "generate.log", folder / "summary.json")
    shutil.rmtree(folder / "landing", ignore_errors=True)
    return step["result"]["expected_events"] / 2000


# ---------------------------------------------------------------------------- checks


def check_marts(warehouse: Path, dirs: dict[str, Path]) -> dict:
    """Each reference's three marts against the warehouse's: same groups, same counts,
    rates within 1e-12."""
    import duckdb
    import pandas as pd

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        built = {m: con.execute(f"select * from marts.{m}").df() for m in MARTS}
    finally:
        con.close()
    out: dict = {}
    for ref, folder in dirs.items():
        problems = []
        for mart, key in MARTS.items():
            a = built[mart].copy()
            b = pd.read_parquet(folder / f"{mart}.parquet")
            a[key], b[key] = a[key].astype(str), b[key].astype(str)
            a, b = a.set_index(key).sort_index(), b.set_index(key).sort_index()
            if list(a.index) != list(b.index):
                problems.append(f"{mart}: groups differ ({sorted(set(a.index) ^ set(b.index))})")
                continue
            for c in COUNTS:
                if (a[c].astype("int64") != b[c].astype("int64")).any():
                    problems.append(f"{mart}.{c} differs")
            for c in RATES:
                if c in a.columns and c in b.columns:
                    x, y = a[c].astype(float), b[c].astype(float)
                    if not ((x - y).abs().le(1e-12) | (x.isna() & y.isna())).all():
                        problems.append(f"{mart}.{c} differs")
        out[ref] = {"ok": not problems, "problems": problems,
                    "rows": {m: int(len(built[m])) for m in MARTS},
                    "infusions": int(built["reaction_rate_by_cycle"]["infusions"].sum())}
    return out


# ---------------------------------------------------------------------------- one size


def mem_available() -> int:
    m = re.search(r"^MemAvailable:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    return int(m.group(1)) * 1024 if m else 0


def bench_size(target: int, work: Path, per_patient: float, repeat: int, seed: int, runs: int,
               prev: dict | None = None) -> dict:
    name = label(target)
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)
    home = folder / "home"
    logs = folder / "logs"
    patients = max(10, int(round(target / per_patient)))
    sites = sites_for(target)
    print(f"== {name}: {patients} patients at {sites} sites", flush=True)
    res: dict = {"size": name, "target_events": target, "patients": patients, "sites": sites,
                 "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "steps": {}}
    steps = res["steps"]

    def run_log(key: str, i: int) -> Path:
        """The log of run i (from 0) of a step."""
        return logs / (f"{key}.log" if i == 0 else f"{key}.{i + 1}.log")

    def alternate(*specs, runs: int = 1, js: Path | None = None) -> None:
        """Run each step of `specs` (key, argv, before) `runs` times, taking turns (A B A B
        ...: a machine whose speed drifts during the bench weighs on each alike); per step
        the median wall time, the largest peak RSS, every run kept.  `before()`, if given,
        runs (untimed, in this process) before each run of its step."""
        done: dict[str, list] = {key: [] for key, _, _ in specs}
        for i in range(runs):
            for key, argv, before in specs:
                if before is not None:
                    before()
                done[key].append(run_step(key if runs == 1 else f"{key} ({i + 1}/{runs})", argv,
                                          run_log(key, i), js))
        for key, runs_of_key in done.items():
            one = dict(runs_of_key[0])
            if runs > 1:
                one.update(seconds=statistics.median(d["seconds"] for d in runs_of_key),
                           peak_rss=max(d["peak_rss"] for d in runs_of_key),
                           runs=[d["seconds"] for d in runs_of_key], load_after=runs_of_key[-1]["load_after"])
            steps[key] = one

    def step(key: str, argv: list[str], js: Path | None = None, runs: int = 1, before=None) -> None:
        """Run a step `runs` times (steps that can be re-run on the same state: the build,
        the limit, the peer)."""
        alternate((key, argv, before), runs=runs, js=js)

    step("generate", [PY, str(BENCH / "steps.py"), "generate", "--landing", str(home / "landing"),
                      "--sites", str(sites), "--patients", str(patients), "--seed", str(seed),
                      "--json", str(folder / "generate.json")], folder / "generate.json")
    res["generated"] = {k: steps["generate"]["result"][k] for k in
                        ("total_rows", "expected_events", "expected_duplicates", "expected_quarantined")}
    res["generated"]["submissions"] = len(steps["generate"]["result"]["submissions"])
    step("ingest", [PY, str(BENCH / "steps.py"), "ingest", "--home", str(home),
                    "--json", str(folder / "ingest.json")], folder / "ingest.json")
    warehouse = home / "warehouse" / "safety.duckdb"
    step("build", CLI + ["--home", str(home), "build"], runs=runs,
         before=lambda: warehouse.unlink(missing_ok=True))  # no previous file: a full replay
    # The references: a failure (e.g. the peer out of memory) is recorded, not fatal; a
    # reference whose peak RSS, projected linearly from the previous size, would take more
    # than 70% of the memory available now is not started (the machine is shared).
    for ref in ("limit", "peer"):
        before = (prev or {}).get("steps", {}).get(ref, {})
        if before.get("peak_rss"):
            projected = before["peak_rss"] * target / prev["target_events"]
            if projected > 0.7 * mem_available():
                steps[ref] = {"skipped": f"not run: its peak RSS, projected from {prev['size']}, would be "
                                         f"{projected / GB:.1f} GiB, more than 70% of the "
                                         f"{mem_available() / GB:.1f} GiB available"}
                print(f"  {ref}: {steps[ref]['skipped']}", flush=True)
                continue
        try:
            step(ref, [PY, str(BENCH / f"{ref}.py"), "--home", str(home), "--out", str(folder / ref)], runs=runs)
        except StepFailed as e:
            steps[ref] = {"skipped": f"failed: {str(e).splitlines()[0]}"}
            print(f"  {ref}: {steps[ref]['skipped']}", flush=True)
    refs = [ref for ref in ("limit", "peer") if "seconds" in steps[ref]]
    # in a child too: the parent stays small (a child's peak RSS from wait4 starts at the
    # size of the process it was forked from)
    res["check"] = {}
    if refs:
        res["check"] = run_step("check", [PY, str(BENCH / "run.py"), "--check-marts",
                                          str(home / "warehouse" / "safety.duckdb"), str(folder / "check.json"),
                                          *[f"{ref}={folder / ref}" for ref in refs]],
                                logs / "check.log", folder / "check.json")["result"]
    for ref, c in res["check"].items():
        print(f"  check {ref}: {'same marts as the warehouse' if c['ok'] else c['problems']}", flush=True)
    step("dashboard", [PY, str(BENCH / "steps.py"), "dashboard", "--warehouse",
                       str(home / "warehouse" / "safety.duckdb"), "--repeat", str(repeat),
                       "--json", str(folder / "dashboard.json")], folder / "dashboard.json")

    # the 1% batch: a new submission at each of a few existing sites
    extra_sites = min(3, sites)
    extra_patients = max(30, round(patients / 100))  # 1%; at least 30 (the generator needs some reactions)
    step("generate_1pct", [PY, str(BENCH / "steps.py"), "extra", "--landing", str(home / "landing"),
                           "--scratch", str(folder / "extra-scratch"), "--sites", str(extra_sites),
                           "--patients", str(extra_patients), "--seed", str(seed + 1),
                           "--submission-id", "2025-07-15-901", "--exported-at", "2025-07-15T17:00:00+08:00",
                           "--json", str(folder / "extra.json")], folder / "extra.json")
    step("ingest_1pct", [PY, str(BENCH / "steps.py"), "ingest", "--home", str(home),
                         "--json", str(folder / "ingest_1pct.json")], folder / "ingest_1pct.json")
    before_1pct = folder / "warehouse-before-1pct.duckdb"
    shutil.copyfile(warehouse, before_1pct)  # the warehouse of every batch but the 1% batch
    # The incremental build, and a full replay of the same events into another file, in
    # turns: the replay is what the incremental build is measured against, and the proof
    # that it gives the same warehouse.
    replay = folder / "replay-after-1pct.duckdb"
    alternate(("build_after_1pct", CLI + ["--home", str(home), "build"],
               lambda: shutil.copyfile(before_1pct, warehouse)),
              ("replay_after_1pct", CLI + ["--home", str(home), "build", "--out", str(replay)],
               lambda: replay.unlink(missing_ok=True)),
              runs=runs)
    for i in range(runs):  # each run must have taken the path it measures
        line = next((x for x in run_log("build_after_1pct", i).read_text().splitlines()
                     if x.startswith("sources:")), "")
        if "(incremental:" not in line and "; incremental:" not in line:
            raise StepFailed(f"build_after_1pct run {i + 1} was not incremental: {line[-200:]}")
        if "(full replay" not in run_log("replay_after_1pct", i).read_text():
            raise StepFailed(f"replay_after_1pct run {i + 1} was not a full replay")
    steps["build_after_1pct"]["path"] = line[line.index("incremental:"):].rstrip(")")
    before_1pct.unlink()
    # the proof at this size: the last incremental warehouse against the last full replay
    res["replay_check"] = run_step("compare", [PY, str(BENCH / "steps.py"), "compare", "--got", str(warehouse),
                                               "--want", str(replay), "--json", str(folder / "compare.json")],
                                   logs / "compare.log", folder / "compare.json")["result"]
    replay.unlink()
    print(f"  incremental against the full replay: {res['replay_check']['differences'] or 'identical'}", flush=True)
    res["events"] = steps["ingest"]["result"]["events"]
    res["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return res


# ---------------------------------------------------------------------------- machine


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine() -> dict:
    cpuinfo = _read("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    osr = re.search(r'^PRETTY_NAME="?([^"\n]+)', _read("/etc/os-release"), re.M)
    cg_mem = _read("/sys/fs/cgroup/memory.max").strip()
    cg_cpu = _read("/sys/fs/cgroup/cpu.max").strip()
    versions = {}
    for mod, dist in (("duckdb", "duckdb"), ("great_expectations", "great_expectations"),
                      ("pandas", "pandas"), ("pyarrow", "pyarrow"), ("numpy", "numpy")):
        try:
            from importlib.metadata import version
            versions[mod] = version(dist.replace("_", "-"))
        except Exception:  # noqa: BLE001
            versions[mod] = "?"
    commit = os.environ.get("BENCH_CODE_COMMIT")  # set when bench runs a snapshot (git archive)
    if not commit:
        try:
            git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
            commit = git("log", "-1", "--format=%h %s")
            dirty = git("status", "--porcelain", "--", "safety_ledger", "transforms", "warehouse", "dashboard")
            if dirty:
                commit += f" plus uncommitted changes to {len(dirty.splitlines())} file(s)"
        except OSError:
            commit = "?"
    return {
        "cpu": model.group(1).strip() if model else platform.processor() or "?",
        "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
        "cgroup_cpu": cg_cpu or None, "cgroup_memory": cg_mem or None,
        "ram_bytes": int(mem.group(1)) * 1024 if mem else None,
        "os": osr.group(1) if osr else platform.platform(), "kernel": platform.release(),
        "python": platform.python_version(), "versions": versions, "commit": commit,
    }


# ---------------------------------------------------------------------------- report


def _s(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:,.2f}" if x < 10 else f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def _mib(b: float | None) -> str:
    return "—" if b is None else f"{b / 2**20:,.0f} MiB"


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if not a or not b else f"{a / b:.2f}×"


def _runs(step: dict) -> str:
    runs = step.get("runs")
    if not runs:
        return ""
    return f"median of {len(runs)} runs ({', '.join(f'{x:.1f}' for x in runs)} s); "


def _yes(ok: bool | None) -> str:
    return "not measured" if ok is None else "**met**" if ok else "**not met**"


def ingest_rss(step: dict) -> int:
    """The ingest's memory: with worker processes, the sum of the parent's, every worker's
    and the forkserver's peaks (an upper bound: they need not peak together, and a worker's
    counts the pages it shares with the forkserver); else its peak RSS."""
    workers = step["result"].get("workers_peak_rss_bytes") or []
    if not workers:
        return step["peak_rss"]
    return (step["result"].get("parent_peak_rss_bytes", step["peak_rss"]) + sum(workers)
            + step["result"].get("forkserver_peak_rss_bytes", 0))


def size_figures(r: dict) -> dict:
    st = r["steps"]
    ing, ing1 = st["ingest"], st["ingest_1pct"]
    f = {
        "events": ing["result"]["events"], "rows": ing["result"]["rows"],
        "ingest_s": ing["seconds"], "rows_per_s": ing["result"]["rows"] / ing["seconds"],
        "events_per_s": ing["result"]["events"] / ing["seconds"],
        # with worker processes GX's seconds are summed over them: a share of their time
        "gx_share": ing["result"]["gx_seconds"] / (ing["seconds"] * max(1, ing["result"].get("workers", 0))),
        "parsing_share": ing["result"].get("parsing_seconds", 0.0)
        / (ing["seconds"] * max(1, ing["result"].get("workers", 0))),
        "ingest_rss": ingest_rss(ing),
        "build_s": st["build"]["seconds"], "limit_s": st["limit"].get("seconds"),
        "peer_s": st["peer"].get("seconds"),
        "incr_s": st["build_after_1pct"]["seconds"],
        # the incremental build against a full replay of the same events run in turns with
        # it (results saved before that: against the full build of the events before the batch)
        "incr_of": st.get("replay_after_1pct", st["build"])["seconds"],
        "rss_pipeline": max([ingest_rss(ing), ingest_rss(ing1)]
                            + [st[k]["peak_rss"] for k in ("build", "dashboard", "build_after_1pct")]),
        "query_p95_ms": max(q["p95_ms"] for p in st["dashboard"]["result"]["pages"] for q in p["queries"]),
        "page_p95_ms": max(p["page_p95_ms"] for p in st["dashboard"]["result"]["pages"]),
        "ingest1_rows_per_s": ing1["result"]["rows"] / ing1["seconds"],
    }
    return f


def report(results: list[dict], skipped: list[dict], mach: dict, args, failures: list[str]) -> str:
    now = datetime.now(timezone.utc)
    L = []
    L.append("# `make bench` results\n")
    opts = f"--sizes {args.sizes}" + (f" --max-ingest-minutes {args.max_ingest_minutes:g}"
                                       if args.max_ingest_minutes != 120 else "") \
        + (" --reuse" if args.reuse else "")
    codes = {r.get("code") for r in results}
    code = codes.pop() if len(codes) == 1 and None not in codes else None
    L.append(f"Written {now:%Y-%m-%d %H:%M} UTC by `python bench/run.py {opts}` (do not edit by hand). "
             + (f"Code measured: `{code}`.\n" if code else "Code measured: given under each size.\n"))
    L.append("## Machine\n")
    cg = []
    if mach["cgroup_cpu"] and not mach["cgroup_cpu"].startswith("max"):
        cg.append(f"cgroup cpu.max {mach['cgroup_cpu']}")
    if mach["cgroup_memory"] and mach["cgroup_memory"] != "max":
        cg.append(f"cgroup memory.max {int(mach['cgroup_memory']) / GB:.1f} GiB")
    v = mach["versions"]
    L.append(f"- CPU: {mach['cpu']}, {mach['cores']} cores ({mach['usable_cores']} usable)"
             + (f"; {', '.join(cg)}" if cg else ""))
    L.append(f"- RAM: {mach['ram_bytes'] / GB:.1f} GiB" if mach["ram_bytes"] else "- RAM: ?")
    L.append(f"- OS: {mach['os']}, Linux {mach['kernel']}")
    L.append(f"- Python {mach['python']}, DuckDB {v['duckdb']}, Great Expectations {v['great_expectations']}, "
             f"pandas {v['pandas']}, pyarrow {v['pyarrow']}, numpy {v['numpy']}")
    loads = [s.get("load_before", 0) for r in results for s in r["steps"].values()]
    if loads:
        L.append("- The bench's own process stays small (about 20 MiB, no DuckDB or pandas imported) "
                 "because a child's peak RSS from `wait4()` starts at the size of the process it was "
                 "forked from.")
        L.append(f"- Load average (1 min) at the start of the steps: {min(loads):.1f} to {max(loads):.1f} "
                 f"on {mach['usable_cores']} cores: other work ran on the machine during the bench, "
                 "so times are upper bounds of what the code needs on an idle machine.")
    L.append("")
    L.append("Each step is a child process: wall seconds from start to exit (Python start and imports "
             "included), peak RSS from `wait4()` (the child's largest resident set). `build` is "
             "`safety-ledger --home H build`; `ingest` is `safety_ledger.ingest.ingest_landing` run "
             "in a child by `bench/steps.py`, which shares whole sites among worker processes (one per "
             "core, forked from a forkserver that imported the ingest's modules) when there is at "
             "least 32 MiB of CSV; GX then runs in the parent, on the distinct values the workers send. "
             "Its peak RSS is then the parent's plus each worker's plus the "
             "forkserver's (an upper bound: a worker's counts the pages it shares with the forkserver), "
             "and GX's share is of the wall time times the workers. "
             "`safety_ledger.validation.STATS` times the GX step in every process: GX's share is "
             "`distinct_values` (the batch GX judges, made in the workers), `run_checkpoint` (the "
             "checkpoint runs), `render_pages` and `build_data_docs` (Data Docs); "
             "`frame_for` (the cells parsed into the typed frame that GX checks and the events "
             "are built from) is shown apart. "
             "An event is an accepted row; ingest rows/s counts every data row read (events + "
             "duplicates + quarantined rows, all of them validated).\n")

    for r in results:
        st, f = r["steps"], size_figures(r)
        g = r["generated"]
        L.append(f"## {r['size']}: {f['events']:,} events\n")
        L.append(f"{r['patients']:,} patients at {r['sites']} sites, {g['submissions']} submissions, "
                 f"{g['total_rows']:,} data rows ({g['expected_duplicates']:,} duplicates, "
                 f"{g['expected_quarantined']:,} invalid). Measured {r['started']} to {r['finished']}"
                 + (f" on code `{r['code']}`" if r.get("code") else "") + ".\n")
        L.append("`× limit` and `× peer`: the step's wall time divided by the limit's and by the peer's "
                 "(below 1: faster than that reference).\n")
        L.append("| step | wall s | throughput | peak RSS | × limit | × peer | notes |")
        L.append("|---|---:|---:|---:|---:|---:|---|")
        lim, peer = st["limit"], st["peer"]
        ing = st["ingest"]
        gx = ing["result"]["gx_breakdown"]
        gx_text = ", ".join(f"{k} {v['seconds']:.1f} s in {v['calls']} calls" for k, v in gx.items())
        L.append(f"| generate (setup) | {_s(st['generate']['seconds'])} | "
                 f"{g['total_rows'] / st['generate']['seconds']:,.0f} rows/s | {_mib(st['generate']['peak_rss'])} "
                 "| | | not a pipeline step |")
        L.append(f"| ingest | {_s(ing['seconds'])} | {f['rows_per_s']:,.0f} rows/s "
                 f"({f['events_per_s']:,.0f} events/s) | {_mib(f['ingest_rss'])} | | | "
                 + (f"{ing['result']['workers']} worker processes (peak RSS: parent "
                    f"{_mib(ing['result']['parent_peak_rss_bytes'])}, workers "
                    f"{', '.join(_mib(b) for b in ing['result']['workers_peak_rss_bytes'])}, forkserver "
                    f"{_mib(ing['result'].get('forkserver_peak_rss_bytes', 0))}; summed); "
                    f"GX {100 * f['gx_share']:.0f}% of wall × workers"
                    if ing["result"].get("workers") else f"GX {100 * f['gx_share']:.0f}% of wall")
                 + "; parsing cells into the typed frame GX and "
                 f"the events share {100 * f['parsing_share']:.0f}% ({gx_text}) |")
        for key, text in (("build", "full build"), ("build_after_1pct", "build after the 1% batch")):
            s = st[key]
            L.append(f"| {text} | {_s(s['seconds'])} | {f['events'] / s['seconds']:,.0f} events/s | "
                     f"{_mib(s['peak_rss'])} | {_ratio(s['seconds'], lim.get('seconds'))} | "
                     f"{_ratio(s['seconds'], peer.get('seconds'))} | " + _runs(s)
                     + ("incremental build (from the warehouse before the batch; "
                        f"{s.get('path', 'incremental')}): "
                        + f"{100 * s['seconds'] / f['incr_of']:.0f}% of "
                        + ("the full replay of the same events (next row; their runs taken in turns)"
                           if "replay_after_1pct" in st else "the full build")
                        if key != "build" else "all marts, published") + " |")
        if "replay_after_1pct" in st:
            s, rc = st["replay_after_1pct"], r["replay_check"]
            L.append(f"| full replay after the 1% batch | {_s(s['seconds'])} | "
                     f"{(f['events'] + st['ingest_1pct']['result']['events']) / s['seconds']:,.0f} events/s | "
                     f"{_mib(s['peak_rss'])} | {_ratio(s['seconds'], lim.get('seconds'))} | "
                     f"{_ratio(s['seconds'], peer.get('seconds'))} | " + _runs(s) + "into another file, the same "
                     "events as the build after the 1% batch, each run just after one of its runs; the last "
                     "incremental warehouse against the last replay: "
                     + ("**identical**: " if not rc["differences"] else "**DIFFERENT**: ")
                     + f"{rc['relations']} relations, {rc['rows']:,} table rows compared "
                     f"(safety_ledger/warehouse_diff.py, {rc['seconds']:.1f} s) |")
        for ref, text in (("limit", "limit (DuckDB, 1 query)"), ("peer", "peer (pandas)")):
            s = st[ref]
            if "seconds" not in s:
                L.append(f"| {text} | — | — | — | | | {s['skipped']} |")
                continue
            L.append(f"| {text} | {_s(s['seconds'])} | {f['events'] / s['seconds']:,.0f} events/s | "
                     f"{_mib(s['peak_rss'])} | {_ratio(s['seconds'], lim.get('seconds'))} | "
                     f"{_ratio(s['seconds'], peer.get('seconds'))} | " + _runs(s) + "3 reaction-rate marts |")
        e1, i1 = st["generate_1pct"]["result"], st["ingest_1pct"]
        L.append(f"| ingest of the 1% batch | {_s(i1['seconds'])} | {f['ingest1_rows_per_s']:,.0f} rows/s | "
                 f"{_mib(i1['peak_rss'])} | | | {len(e1['submissions'])} new submissions, "
                 f"{i1['result']['events']:,} events, GX {100 * i1['result']['gx_seconds'] / i1['seconds']:.0f}% |")
        L.append("")
        checks = r["check"]
        if checks:
            L.append("Check against the warehouse (same groups and counts, rates within 1e-12, three marts): "
                     + "; ".join(f"{ref} {'identical' if c['ok'] else 'DIFFERENT: ' + ', '.join(c['problems'])}"
                                 for ref, c in checks.items())
                     + f" ({next(iter(checks.values()))['infusions']:,} current infusions).\n")
        d = st["dashboard"]["result"]
        if "connect_p50_ms" in d:
            L.append(f"Dashboard queries ({d['repeat']} runs of each; every query as the dashboard runs it on a "
                     "cache miss: a cursor on the one read-only connection it keeps per warehouse file, query, "
                     "fetch a DataFrame; a page load = its distinct queries, the frame's included, in one "
                     "round). Opening that connection (once per rebuilt file): "
                     f"p50 {d['connect_p50_ms']:.1f} ms, p95 {d['connect_p95_ms']:.1f} ms.\n")
        else:  # results saved before the shared connection
            L.append(f"Dashboard queries ({d['repeat']} runs of each; every query as the dashboard ran it on a "
                     "cache miss: open the file read-only, query, fetch a DataFrame, close; a page load = its "
                     "distinct queries, the frame's included, in one round). Opening and closing the file "
                     f"alone: p50 {d['open_close_p50_ms']:.1f} ms, p95 {d['open_close_p95_ms']:.1f} ms.\n")
        L.append("| page | queries | slowest query (p95) | query p50 range | query p95 range | page load p50 | page load p95 |")
        L.append("|---|---:|---|---:|---:|---:|---:|")
        for p in d["pages"]:
            q = p["queries"]
            worst = max(q, key=lambda x: x["p95_ms"])
            L.append(f"| {p['page']} | {len(q)} | {worst['query']} | "
                     f"{min(x['p50_ms'] for x in q):.1f}–{max(x['p50_ms'] for x in q):.1f} ms | "
                     f"{min(x['p95_ms'] for x in q):.1f}–{max(x['p95_ms'] for x in q):.1f} ms | "
                     f"{p['page_p50_ms']:.1f} ms | {p['page_p95_ms']:.1f} ms |")
        L.append("")

    for s in skipped:
        L.append(f"## {s['size']}: not run\n")
        L.append(s["why"] + "\n")

    if results:
        L.append("## Targets\n")
        L.append("The targets are set for 10 million events on 2 cores and 24 GB. Each is judged at the "
                 "largest size run; the other sizes are shown for the trend.\n")
        big = results[-1]
        fb = size_figures(big)
        sizes = " / ".join(r["size"] for r in results)
        per = lambda key, fmt: " / ".join(fmt(size_figures(r)[key]) for r in results)
        rows = [
            ("ingest with validation ≥ 250,000 rows/s", per("rows_per_s", lambda x: f"{x:,.0f} rows/s"),
             fb["rows_per_s"] >= TARGETS["ingest_rows_per_s"]),
            ("peak RSS ≤ 4 GB at every step (ingest, build, dashboard, ingest and build after 1%)",
             per("rss_pipeline", _mib), all(size_figures(r)["rss_pipeline"] <= TARGETS["peak_rss_bytes"]
                                             for r in results)),
            ("full build ≤ 3 × the limit", " / ".join(
                f"build = {size_figures(r)['build_s'] / size_figures(r)['limit_s']:.2f} × limit"
                if size_figures(r)["limit_s"] else "limit not run" for r in results),
             None if not fb["limit_s"] else fb["build_s"] <= TARGETS["build_over_limit"] * fb["limit_s"]),
            ("full build ≥ 10 × faster than the peer", " / ".join(
                f"peer = {size_figures(r)['peer_s'] / size_figures(r)['build_s']:.2f} × build"
                if size_figures(r)["peer_s"] else "peer not run" for r in results),
             None if not fb["peer_s"] else fb["peer_s"] >= TARGETS["peer_over_build"] * fb["build_s"]),
            ("build after a 1% batch ≤ 20% of the full build (a full replay of the same events, "
             "their runs in turns)", " / ".join(
                f"{100 * size_figures(r)['incr_s'] / size_figures(r)['incr_of']:.0f}%" for r in results),
             fb["incr_s"] <= TARGETS["incremental_over_full"] * fb["incr_of"]),
            ("every dashboard query p95 ≤ 150 ms", per("query_p95_ms", lambda x: f"slowest {x:.0f} ms"),
             fb["query_p95_ms"] <= TARGETS["query_p95_ms"]),
        ]
        L.append(f"| target | measured ({sizes}) | at {big['size']} |")
        L.append("|---|---|---|")
        for text, measured, ok in rows:
            L.append(f"| {text} | {measured} | {_yes(ok)} |")
        L.append("")
        if big["target_events"] < 10_000_000:
            L.append(f"10m was not measured: every verdict above is at {big['size']}, and a target met there "
                     "may still be missed at 10m (the build and the ingest grow with the events"
                     + ("; see the projection under 10m above" if skipped else "") + ").\n")
    if failures:
        L.append("## Failures\n")
        L.extend(f"- {x}" for x in failures)
        L.append("")
    return "\n".join(L)


def projection(results: list[dict], target: int) -> str:
    """Figures at `target` events, on the line through the two largest sizes measured (a
    projection, not a measurement: fixed costs and super-linear steps make it rough)."""
    if len(results) < 2:
        return ""
    a, b = size_figures(results[-2]), size_figures(results[-1])

    def at(key_a: float, key_b: float) -> float:
        return key_b + (key_a - key_b) * (target - b["events"]) / (a["events"] - b["events"])

    rss = lambda r: r["steps"]["build"]["peak_rss"]
    ingest = at(a["ingest_s"], b["ingest_s"])
    build = at(a["build_s"], b["build_s"])
    return (f"Projected on the line through {results[-2]['size']} and {results[-1]['size']}: "
            f"ingest {ingest / 3600:.1f} h ({target / ingest:,.0f} events/s), full build "
            f"{build / 60:.1f} min, build peak RSS {at(rss(results[-2]), rss(results[-1])) / GB:.1f} GiB.")


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100k,1m,10m", help="comma-separated event counts (default 100k,1m,10m)")
    p.add_argument("--work", default=str(BENCH / "data"), help="scratch folder (default bench/data)")
    p.add_argument("--out", default=str(BENCH / "results.md"), help="report (default bench/results.md)")
    p.add_argument("--repeat", type=int, default=30, help="runs of each dashboard query (default 30)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--runs", type=int, default=3,
                   help="runs of the build, the limit and the peer; the median is reported (default 3)")
    p.add_argument("--max-ingest-minutes", type=float, default=120.0,
                   help="skip a size whose ingest, projected from the previous size, takes longer "
                        "(default 120; 0: never skip)")
    p.add_argument("--reuse", action="store_true",
                   help="take a size's figures from <work>/results-<size>.json when a previous run saved "
                        "them, instead of measuring it again")
    p.add_argument("--check-marts", nargs="+", metavar="ARG",
                   help=argparse.SUPPRESS)  # the check step's child: WAREHOUSE JSON NAME=DIR...
    args = p.parse_args(argv)
    if args.check_marts:
        wh, out, *refs = args.check_marts
        dirs = {r.split("=", 1)[0]: Path(r.split("=", 1)[1]) for r in refs}
        Path(out).write_text(json.dumps(check_marts(Path(wh), dirs), indent=2))
        return 0
    sizes = sorted(parse_size(s) for s in args.sizes.split(",") if s.strip())
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    mach = machine()
    print(f"bench: sizes {', '.join(label(s) for s in sizes)}; scratch {work}", flush=True)
    per_patient = calibrate(work)
    print(f"  {per_patient:.2f} events per patient", flush=True)

    results, skipped, failures = [], [], []
    for target in sizes:
        if results and args.max_ingest_minutes > 0:
            prev = size_figures(results[-1])
            projected = target / prev["events_per_s"]
            if projected > 60 * args.max_ingest_minutes:
                why = (f"Not run: its ingest alone, at the {prev['events_per_s']:,.0f} events/s measured at "
                       f"{results[-1]['size']}, would take about {projected / 3600:.1f} h "
                       f"(limit `--max-ingest-minutes {args.max_ingest_minutes:g}`). "
                       + projection(results, target))
                print(f"== {label(target)}: {why}", flush=True)
                skipped.append({"size": label(target), "why": why})
                continue
        saved = work / f"results-{label(target)}.json"
        if args.reuse and saved.exists():
            r = json.loads(saved.read_text())
            print(f"== {label(target)}: reusing {saved} ({r['started']})", flush=True)
            results.append(r)
            continue
        try:
            r = bench_size(target, work, per_patient, args.repeat, args.seed, args.runs,
                           results[-1] if results else None)
        except StepFailed as e:
            failures.append(f"{label(target)}: {e}")
            print(e, file=sys.stderr)
            break
        r["code"] = mach["commit"]
        (work / f"results-{label(target)}.json").write_text(json.dumps(r, indent=2, default=str))
        results.append(r)
        for ref, c in r["check"].items():
            if not c["ok"]:
                failures.append(f"{r['size']}: {ref} differs from the warehouse: {'; '.join(c['problems'])}")
        if r.get("replay_check", {}).get("differences"):
            failures.append(f"{r['size']}: the incremental build differs from a full replay: "
                            + "; ".join(r["replay_check"]["differences"]))
    text = report(results, skipped, mach, args, failures)
    Path(args.out).write_text(text + "\n")
    print(f"wrote {args.out}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
