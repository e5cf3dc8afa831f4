"""The shapes of contract-v1 cell types, the one definition used by validation (where
a cell of the right shape must then also parse: 2025-02-30 and 25:00 do not) and by the
manifest's `exported_at`."""
from __future__ import annotations

import re
from datetime import datetime

SHAPES = {
    "int": r"[+-]?[0-9]+",
    "float": r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?",
    "date": r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
    "timestamp": r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})",
    "list": r"[a-z0-9_]+(?:;[a-z0-9_]+)*",
}


class Invalid(ValueError):
    """The cell does not have the contract's type."""


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 with a mandatory offset, as an aware datetime (its own offset)."""
    if not re.fullmatch(SHAPES["timestamp"], text):
        raise Invalid(text)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise Invalid(text) from e
