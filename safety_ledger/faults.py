"""Fault injection for the crash tests: with SAFETY_LEDGER_FAULT=<point>, the process
kills itself (SIGKILL) when it reaches that point, as a power cut would. Points:
`before_ledger` (batch files written, ledger row not yet), `mid_write` (inside an atomic
write, before the rename), `before_publish` (warehouse built, not yet renamed)."""
from __future__ import annotations

import os
import signal

ENV_VAR = "SAFETY_LEDGER_FAULT"


def fault_point(name: str) -> None:
    if os.environ.get(ENV_VAR) == name:
        os.kill(os.getpid(), signal.SIGKILL)
