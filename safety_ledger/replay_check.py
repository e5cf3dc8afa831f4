"""`safety-ledger build --verify-replay`: build and publish as usual, then prove that the
published warehouse is what a full replay of the same events gives.

The warehouse is a projection of the events, and a full replay is its definition; an
incremental build (the usual path) must give the same file, relation for relation and
row for row (safety_ledger/warehouse_diff.py).  The tests and `make bench` prove it on
their data; this checks it on the program's own events, for a data engineer to run
when they want that proof (the verify_warehouse DAG runs it weekly).

Both builds run under the ingest lock, so no batch is committed between them and they
read the same events; the check holds the warehouse's build lock throughout, so no other
build (an as-of build into the same file, say) replaces it before it is compared.  The
full replay goes to a temporary folder beside the warehouse and is removed (a folder
left by a killed check is removed by the next one).  If the two differ, the differences
are reported and the published warehouse is replaced by a full replay (built and
published as any build is): they point to a defect in an incremental rule, to be
reported.  When the build itself was a full replay (no previous warehouse, a changed
transform or safety-ledger version, the 50th incremental build in a row) there is
nothing incremental to check, and no second replay is run.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from .build import BuildSummary, build, build_lock
from .event_store import ingest_lock
from .home import Home
from .warehouse_diff import Comparison, compare


SCRATCH_PREFIX = ".replay-check-"


@dataclass
class ReplayCheck:
    built: BuildSummary                  # the build that was checked
    comparison: Comparison | None        # it against the full replay; None: it was a full replay
    republished: BuildSummary | None = None   # the full replay published instead, when they differed

    @property
    def ok(self) -> bool:
        return self.comparison is None or not self.comparison.differences

    def lines(self) -> list[str]:
        """What to tell the person who ran it (`safety-ledger build --verify-replay`, the
        verify_warehouse DAG): one line when the same, else what differed and what to do."""
        c, b = self.comparison, self.built
        if c is None:
            return [f"published {b.path}: a full replay ({b.reason}), so there was no incremental "
                    "build to check; the next incremental build will be"]
        if not c.differences:
            return [f"published {b.path}: the {b.mode} build ({b.reason}) is the same as a full replay "
                    f"of the same events ({c.relations} relations, {c.rows:,} table rows compared)"]
        return ([f"the {b.mode} build of {b.path} ({b.reason}) differed from a full replay of the "
                 "same events:"]
                + [f"  {line}" for line in c.differences]
                + ["A full replay is published instead: its figures are right.  The difference is a "
                   "defect in an incremental rule (safety_ledger/build.py, warehouse/incremental.sql): "
                   "please report it with these lines."])


def build_and_verify(home: Home, as_of: datetime | None = None, out: Path | None = None,
                     progress: Callable[[str], None] = print) -> ReplayCheck:
    target = Path(out) if out is not None else home.warehouse
    # No batch committed, and no other build published at the target (an as-of build,
    # say), between the build and the end of its check: it compares what it built.
    with ingest_lock(home, progress), build_lock(target, progress):
        built = build(home, as_of=as_of, out=out, progress=progress)
        for left in built.path.parent.glob(SCRATCH_PREFIX + "*"):   # a killed check's
            shutil.rmtree(left, ignore_errors=True)
        if built.mode == "full":
            return ReplayCheck(built, None)
        with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, dir=built.path.parent) as scratch:
            progress("full replay of the same events, to compare with the published warehouse")
            replay = build(home, as_of=as_of, out=Path(scratch) / built.path.name, incremental=False,
                           progress=progress)
            check = ReplayCheck(built, compare(built.path, replay.path,
                                               names=(f"published ({built.mode})", "full replay")))
        if not check.ok:
            for line in check.lines()[:-1]:   # said before the replay is published, in case that fails
                progress(line)
            progress("publishing a full replay instead")
            check.republished = build(home, as_of=as_of, out=out, incremental=False, progress=progress)
    return check
