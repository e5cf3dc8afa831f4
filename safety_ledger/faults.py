"""Fault injection for the crash tests: with SAFETY_LEDGER_FAULT=<point>, the process
kills itself (SIGKILL) when it reaches that point, as a power cut would. Points:
`before_ledger` (batch files written, ledger row not yet), `mid_write` (inside an atomic
write, before the rename), `before_publish` (warehouse built, not yet renamed).
`disk_full` makes every atomic write fail as a full disk does (ENOSPC)."""
from __future__ import annotations

import errno
import os
import signal

ENV_VAR = "SAFETY_LEDGER_FAULT"


def fault_point(name: str) -> None:
    if os.environ.get(ENV_VAR) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def disk_full(path) -> None:
    if os.environ.get(ENV_VAR) == "disk_full":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
