"""`safety-ledger build --verify-replay`: build and publish as usual, then prove that the
published warehouse is what a full replay of the same events gives.

The warehouse is a projection of the events, and a full replay is its definition; an
incremental build (the usual path) must give the same file, relation for relation and
row for row (safety_ledger/warehouse_diff.py).  The tests and `make bench` prove it on
their data; this checks it on the program's own events, for a data engineer to run
when they want that proof (say weekly, or after upgrading safety-ledger).

Both builds run under the ingest lock, so no batch is committed between them and they
read the same events.  The full replay goes to a temporary folder beside the warehouse
and is removed.  If the two differ, the published warehouse is replaced by a full
replay (built and published as any build is), and the differences are returned: they
point to a defect in an incremental rule, to be reported.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from .build import BuildSummary, build
from .event_store import ingest_lock
from .home import Home
from .warehouse_diff import Comparison, compare


@dataclass
class ReplayCheck:
    built: BuildSummary          # the build that was checked
    comparison: Comparison       # it against the full replay
    republished: BuildSummary | None = None   # the full replay published instead, when they differed

    @property
    def ok(self) -> bool:
        return not self.comparison.differences

    def lines(self) -> list[str]:
        """What to tell the person who ran it (`safety-ledger build --verify-replay`, the
        verify_warehouse DAG): one line when the same, else what differed and what to do."""
        c = self.comparison
        if self.ok:
            return [f"published {self.built.path}: the same as a full replay of the same events "
                    f"({c.relations} relations, {c.rows:,} table rows compared)"]
        relations = {line.split(":")[0] for line in c.differences}
        return ([f"the {self.built.mode} build of {self.built.path} differed from a full replay of the "
                 f"same events in {len(relations)} relation(s):"]
                + [f"  {line}" for line in c.differences]
                + [f"A full replay is now published at {self.republished.path}: its figures are right.  "
                   "The difference is a defect in an incremental rule (safety_ledger/build.py, "
                   "warehouse/incremental.sql): please report it with these lines."])


def build_and_verify(home: Home, as_of: datetime | None = None, out: Path | None = None,
                     progress: Callable[[str], None] = print) -> ReplayCheck:
    with ingest_lock(home, progress):
        built = build(home, as_of=as_of, out=out, progress=progress)
        with tempfile.TemporaryDirectory(prefix=".replay-check-", dir=built.path.parent) as scratch:
            progress("full replay of the same events, to compare with the published warehouse")
            replay = build(home, as_of=as_of, out=Path(scratch) / built.path.name, incremental=False,
                           progress=progress)
            check = ReplayCheck(built, compare(built.path, replay.path,
                                               names=(f"published ({built.mode})", "full replay")))
        if not check.ok:
            progress("the published warehouse differs from a full replay: publishing a full replay instead")
            check.republished = build(home, as_of=as_of, out=out, incremental=False, progress=progress)
    return check
