"""Strict parsing of contract-v1 cell values. One parser per type, used both to flag a
cell that breaks its type rule and to produce the typed event value."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone

_INT = re.compile(r"^[+-]?[0-9]+$")
_FLOAT = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_TIMESTAMP = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})$")
_LIST_TOKEN = re.compile(r"^[a-z0-9_]+$")


class Invalid(ValueError):
    """The cell does not have the contract's type."""


def parse_int(text: str) -> int:
    if not _INT.match(text):
        raise Invalid(text)
    return int(text)


def parse_float(text: str) -> float:
    if not _FLOAT.match(text):
        raise Invalid(text)
    return float(text)


def parse_date(text: str) -> date:
    if not _DATE.match(text):
        raise Invalid(text)
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise Invalid(text) from e


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 with a mandatory offset; returned as an aware datetime (its own offset)."""
    if not _TIMESTAMP.match(text):
        raise Invalid(text)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise Invalid(text) from e


def parse_bool(text: str) -> bool:
    if text == "true":
        return True
    if text == "false":
        return False
    raise Invalid(text)


def parse_list(text: str) -> list[str]:
    """`;`-separated lower-case tokens, no spaces; vocabulary is checked by the suite."""
    tokens = text.split(";")
    if not all(_LIST_TOKEN.match(t) for t in tokens):
        raise Invalid(text)
    return tokens


PARSERS = {"int": parse_int, "float": parse_float, "date": parse_date,
           "timestamp": parse_timestamp, "bool": parse_bool, "list": parse_list,
           "string": str, "enum": str}


def parse(kind: str, text: str | None):
    """Typed value of a cell, None for an empty cell; raises Invalid."""
    if text is None:
        return [] if kind == "list" else None
    return PARSERS[kind](text)


def to_utc(ts: datetime) -> datetime:
    return ts.astimezone(timezone.utc)
