"""Ingest on every core: the sites of a landing shared among worker processes.

Sites are independent at ingestion: a submission is compared only with its own site's
history, pseudonyms are keyed by site, and each batch commits its own files and ledger
row. So each worker takes whole sites and ingests their submissions in landing order,
exactly as one process would (safety_ledger.ingest.ingest_folders); what it commits is
the same, only sooner.

The parent holds the ingest lock throughout, prints the workers' progress lines as they
come, gathers their reports (ordered as the landing lists them) and their timings, and
waits for all of them before it returns. It is also where GX runs: a worker reads and
parses its wave, sends each file type's distinct values (a few thousand rows, see
validation.py) and waits for the rules they broke (GXInParent). GX is then imported
(about 3 s) and set up once, in the parent, while the workers read their first wave, and
a worker holds no GX (about 250 MB less each). The parent renders a wave's Data Docs
pages when the worker says it is committed, and builds the index once, even when a
worker failed (validation.build_data_docs). A worker that fails makes the ingest fail
once the others have finished; what any worker committed stays committed (each batch is
atomic), and a re-run ingests the rest.

Workers are forked from a forkserver: a fresh interpreter, started once per process, that
imports the ingest's modules (pandas, pyarrow) so that no worker imports them again. It
runs no Python thread and holds none of the caller's locks, so forking it is safe, where
forking the parent (an Airflow task, a dashboard) could copy a lock held by another
thread into the child. multiprocessing gives a worker the parent's sys.path and working
folder; its environment would be the server's, as it was when the server started (once
per process), so each worker is given the parent's environment as it is when the worker
starts (SAFETY_LEDGER_SECRET, a fault point).
"""
from __future__ import annotations

import multiprocessing
import os
import queue as queues
import sys
import traceback
import types
from pathlib import Path

from . import contract, event_store, validation
from .home import Home
from .ingest import (WAVE_BYTES, Ledger, Progress, SubmissionReport, batch_id_of, earlier_ingests,
                     ingest_folders)
from .manifest import SubmissionRejected, check_names, file_sha256
from .pseudonym import Pseudonymizer, load_key

# Below this much CSV to ingest, starting workers (the forkserver's interpreter) costs
# more than it saves.
PARALLEL_MIN_BYTES = 32 * 2**20

# Figures of the last parallel run in this process (for the bench): each worker's peak
# RSS, and the forkserver's.
LAST_RUN: dict = {}

# What the forkserver imports once, for every worker it forks (not GX: the parent runs it).
PRELOAD = ["safety_ledger.ingest", "safety_ledger.validation"]


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _csv_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.csv") if p.is_file())


def _has_work(folder: Path, ledger: Ledger) -> bool:
    """Whether the submission would be ingested rather than skipped (as open_submission
    decides, without checking its files: that is the worker's job). Unsure means yes."""
    site_id, submission_id = folder.parent.name, folder.name
    manifest = folder / contract.MANIFEST
    if folder.parent.is_symlink() or folder.is_symlink() or manifest.is_symlink():
        return True   # rejected by the worker without opening anything
    try:
        check_names(site_id, submission_id)
        identity = file_sha256(manifest)   # what load_manifest gives as the manifest's sha256
    except (SubmissionRejected, OSError):
        return True
    done, accepted_before = earlier_ingests(ledger, site_id, submission_id,
                                            batch_id_of(site_id, submission_id, identity))
    return done is None and not accepted_before


def plan_groups(complete: list[Path], ledger: Ledger, workers: int | None,
                min_bytes: int | None = None) -> list[list[tuple[int, Path]]]:
    """The submissions (numbered in landing order) for each worker: whole sites, spread so
    that the CSV bytes to ingest are even. One group (no workers) when one process is
    asked for, when one site has work, or when there is less than `min_bytes` to do
    (default PARALLEL_MIN_BYTES)."""
    min_bytes = PARALLEL_MIN_BYTES if min_bytes is None else min_bytes
    numbered = list(enumerate(complete))
    workers = available_cores() if workers is None else workers
    todo: dict[str, int] = {}
    for _, folder in numbered:
        if not _has_work(folder, ledger):
            continue
        todo[folder.parent.name] = todo.get(folder.parent.name, 0) + _csv_bytes(folder)
    if workers <= 1 or len(todo) <= 1 or sum(todo.values()) < min_bytes:
        return [numbered]
    n = min(workers, len(todo))
    loads, sites = [0] * n, [set() for _ in range(n)]
    for site, size in sorted(todo.items(), key=lambda kv: (-kv[1], kv[0])):  # largest first
        k = loads.index(min(loads))
        loads[k] += size
        sites[k].add(site)
    # a site with nothing to do (already ingested, still being written) goes to the first
    # worker: its submissions are only reported
    groups = [[(i, f) for i, f in numbered if f.parent.name in sites[k]
               or (k == 0 and f.parent.name not in todo)] for k in range(n)]
    return [g for g in groups if g]


def run_in_workers(home: Home, groups: list[list[tuple[int, Path]]], total: int,
                   progress: Progress) -> dict[int, SubmissionReport]:
    """Ingest each group in its own worker process; returns every report by its number."""

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    messages = context.Queue()
    replies = [context.Queue() for _ in groups]   # the parent's answer to each worker's GX batch
    wave_bytes = max(WAVE_BYTES // len(groups), 8 * 2**20)   # about the memory of one process
    environment = dict(os.environ)
    procs = [context.Process(target=_worker, name=f"ingest-worker-{k + 1}",
                             args=(str(home.root), [(i, str(f)) for i, f in group], total, wave_bytes,
                                   messages, replies[k], k, environment, os.getpid()))
             for k, group in enumerate(groups)]
    progress(f"ingesting with {len(procs)} worker processes: "
             + "; ".join(f"worker {k + 1}: {', '.join(sorted({f.parent.name for _, f in g}))}"
                         for k, g in enumerate(groups)))
    _start(procs)
    reports: dict[int, SubmissionReport] = {}
    failures: list[str] = []
    finished: set[int] = set()
    judged: dict[int, list] = {}   # worker -> validation results of its wave, pages not rendered
    LAST_RUN.clear()
    LAST_RUN["workers"] = {}
    try:
        validation.prepare(home)   # GX imported and set up while the workers read
        while len(finished) < len(procs):
            try:
                kind, k, *payload = messages.get(timeout=1.0)
            except queues.Empty:
                for k, p in enumerate(procs):
                    if k not in finished and not p.is_alive():
                        finished.add(k)
                        failures.append(f"worker {k + 1} stopped (exit code {p.exitcode}) without a report")
                continue
            if kind == "progress":
                progress(payload[0])
            elif kind == "judge":
                replies[k].put(_judge(home, *payload, judged.setdefault(k, [])))
            elif kind == "committed":
                validation.render_pages(home, judged.pop(k, []))
            elif kind == "done":
                done, stats, peak_rss, server_peak_rss = payload
                reports.update(done)
                validation.add_stats(stats)
                LAST_RUN["workers"][k + 1] = {"peak_rss_bytes": peak_rss}
                LAST_RUN["forkserver_peak_rss_bytes"] = server_peak_rss
                finished.add(k)
            else:  # failed
                failures.append(f"worker {k + 1} failed:\n{payload[0]}")
                finished.add(k)
    except BaseException:
        # the workers cannot validate without this process: stopped as a power cut would
        # stop them (what they committed stays committed; a batch is atomic)
        for p in procs:
            p.terminate()
        raise
    finally:
        for p in procs:
            p.join()
    if failures:
        _index_what_was_rendered(home, progress)
        raise RuntimeError("ingest failed in a worker process (what the others committed stays "
                           "committed; run the ingest again to finish):\n" + "\n".join(failures))
    return reports


def _judge(home: Home, file: str, values, run_name: str, judged: list) -> tuple[str, object]:
    """GX's verdict on a worker's batch of distinct values, as the reply it waits for:
    ("ok", the failures) or ("failed", why), the results' identifiers added to `judged`."""
    try:
        failures, identifiers = validation.run_checkpoint(home, file, values, run_name)
    except Exception:  # noqa: BLE001 - the worker reports it, as if GX had run there
        return "failed", traceback.format_exc()
    judged.extend(identifiers)
    return "ok", failures


class GXInParent:
    """validation.GX_ELSEWHERE in a worker: each batch of distinct values goes to the
    parent process, which runs GX and answers (run_in_workers); a committed wave is
    reported so that the parent renders its pages."""

    LOOK_EVERY = 5.0   # seconds between looks at whether the parent is still there

    def __init__(self, k: int, messages, replies, parent_pid: int):
        self.k, self.messages, self.replies, self.parent_pid = k, messages, replies, parent_pid

    def run_checkpoint(self, file: str, values, run_name: str) -> list:
        self.messages.put(("judge", self.k, file, values, run_name))
        while True:
            try:
                kind, payload = self.replies.get(timeout=self.LOOK_EVERY)
                break
            except queues.Empty:
                if not _alive(self.parent_pid):
                    raise RuntimeError("the ingest's parent process is gone: GX cannot judge this wave")
        if kind != "ok":
            raise RuntimeError(f"GX in the parent process could not judge {file}:\n{payload}")
        return payload

    def wave_committed(self) -> None:
        self.messages.put(("committed", self.k))


def _alive(pid: int) -> bool:
    """Whether process `pid` still runs (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # it runs, as another user
        pass
    return True


def _index_what_was_rendered(home: Home, progress: Progress) -> None:
    """After a worker failed: the Data Docs index of what the workers committed and
    rendered (a re-run skips it), without hiding the failure if this fails too."""
    try:
        progress(f"GX Data Docs: {validation.build_data_docs(home)}")
    except Exception as e:  # noqa: BLE001 - the worker's failure is the one to report
        progress(f"GX Data Docs could not be built: {e}")


def _start(procs) -> None:
    """Start the workers without their re-running this process's main module: a
    forkserver's child runs it again (as __mp_main__) when it has a file, and here it is
    whatever started the ingest (the CLI, an Airflow task runner, a test runner, a
    script that a Streamlit test set as __main__). The workers need nothing from it."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        for p in procs:
            p.start()
    finally:
        sys.modules["__main__"] = main


def _peak_rss(pid: int) -> int:
    """A process's peak resident set (VmHWM), in bytes; 0 where /proc does not say."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _use_jemalloc() -> None:
    """Arrow's allocations from jemalloc rather than the default mimalloc: on one 128 MiB
    wave of the 10m bench landing (a worker's wave when waves were 256 MiB), a worker's
    peak RSS 1,073 -> 962 MB and its time 15.1-16.0 -> 14.2 s. Left as it is where
    ARROW_DEFAULT_MEMORY_POOL chooses a pool (memory debugging, say) or where pyarrow was
    built without jemalloc."""
    import pyarrow
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        pyarrow.set_memory_pool(pyarrow.jemalloc_memory_pool())
    except NotImplementedError:
        pass


def _worker(root: str, numbered: list[tuple[int, str]], total: int, wave_bytes: int,
            messages, replies, k: int, environment: dict[str, str], parent_pid: int) -> None:
    home = Home(Path(root))
    try:
        os.environ.clear()
        os.environ.update(environment)
        validation.GX_ELSEWHERE = GXInParent(k, messages, replies, parent_pid)
        import pyarrow
        pyarrow.set_cpu_count(1)   # one core per worker: the workers are the parallelism
        _use_jemalloc()
        pseudo = Pseudonymizer(load_key(home.key_file))
        ledger = Ledger(event_store.read_ledger(home))
        reports = ingest_folders(home, [(i, Path(f)) for i, f in numbered], total, pseudo, ledger,
                                 lambda line: messages.put(("progress", k, line)), wave_bytes)
        messages.put(("done", k, reports, validation.STATS,
                      _peak_rss(os.getpid()), _peak_rss(os.getppid())))   # the forkserver's
    except BaseException:
        messages.put(("failed", k, traceback.format_exc()))
