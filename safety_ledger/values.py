"""The shapes of contract-v1 cell types, the one definition used by validation (where
a cell of the right shape must then also parse: 2025-02-30 and 25:00 do not) and by the
manifest's `exported_at`; and the calendar, vectorized both ways: a timestamp's text to
its instant (timestamp_micros), an instant or a day to its text (utc_texts, and
civil_from_days with put_digits, which the CSV writer uses too)."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.lib.stride_tricks import sliding_window_view

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
    """ISO 8601 with a mandatory offset, as an aware datetime (its own offset); valid
    exactly when timestamp_micros says so."""
    if not timestamp_micros(pa.array([text], pa.string()))[1][0]:
        raise Invalid(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_FIRST_US = -62_135_596_800 * 10**6            # 0001-01-01T00:00:00Z
_LAST_US = 253_402_300_800 * 10**6 - 1         # 9999-12-31T23:59:59.999999Z


def timestamp_micros(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Each text's UTC instant in microseconds since 1970-01-01T00:00Z, and whether it
    parses: it has the shape, and its date, time and offset exist (month 1 to 12, a day
    of that month, hour 0 to 23, minutes and seconds 0 to 59, an offset below 24 hours)
    and its instant falls in years 1 to 9999 at UTC (what a Python datetime holds).
    Vectorized over the text's bytes: the shape fixes where each field is. Where it does
    not parse, the instant is 0."""
    n = len(texts)
    micros, valid = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    shaped = pc.match_substring_regex(texts, f"^(?:{SHAPES['timestamp']})$")
    rows = np.flatnonzero(pc.fill_null(shaped, False).to_numpy(zero_copy_only=False))
    if not len(rows):
        return micros, valid
    texts = texts.cast(pa.large_string())
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64)[texts.offset:texts.offset + n + 1]
    data = np.frombuffer(texts.buffers()[2], dtype=np.uint8)
    start, end = offsets[rows], offsets[rows + 1]

    # YYYY-MM-DDTHH:MM[:SS[.f{1,6}]](Z|+HH:MM|-HH:MM): the first 26 bytes and the last 6 of
    # each text (past a text's end: what follows it, or zeros; masked below where unused)
    padded = np.concatenate([data, np.zeros(26, dtype=np.uint8)])
    head = sliding_window_view(padded, 26)[start]
    tail = sliding_window_view(padded, 6)[end - 6]

    def number(digits: np.ndarray) -> np.ndarray:
        value = np.zeros(len(digits), dtype=np.int64)
        for k in range(digits.shape[1]):
            value = value * 10 + digits[:, k] - 48
        return value

    year, month, day = number(head[:, 0:4]), number(head[:, 5:7]), number(head[:, 8:10])
    hour, minute = number(head[:, 11:13]), number(head[:, 14:16])
    utc = tail[:, 5] == ord("Z")
    zone = np.where(utc, end - 1, end - 6) - start
    second = np.where(zone > 16, number(head[:, 17:19]), 0)
    fraction_digits = np.where(zone > 16, zone - 20, 0)
    fraction = number(np.where(np.arange(6) < fraction_digits[:, None], head[:, 20:26], ord("0")))
    offset_hour = np.where(utc, 0, number(tail[:, 1:3]))
    offset_minute = np.where(utc, 0, number(tail[:, 4:6]))
    east = np.where(tail[:, 0] == ord("-"), -1, 1)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days_in_month = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    exists = ((year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= days_in_month)
              & (hour <= 23) & (minute <= 59) & (second <= 59) & (offset_hour <= 23) & (offset_minute <= 59))
    # days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil)
    y = year - (month <= 2)
    era = y // 400
    year_of_era = y - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    days = era * 146_097 + year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year - 719_468
    local_minutes = (days * 24 + hour) * 60 + minute
    instant = ((local_minutes - east * (offset_hour * 60 + offset_minute)) * 60 + second) * 10**6 + fraction
    exists &= (instant >= _FIRST_US) & (instant <= _LAST_US)
    micros[rows] = np.where(exists, instant, 0)
    valid[rows] = exists
    return micros, valid


def civil_from_days(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Days since 1970-01-01 -> (year, month, day), proleptic Gregorian (H. Hinnant)."""
    z = days.astype(np.int64) + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day


def put_digits(out: np.ndarray, col: int, value: np.ndarray, width: int) -> None:
    """Zero-padded decimal digits of `value` (0 <= value < 10**width) into out[:, col:col+width]."""
    x = value
    for j in range(width - 1, -1, -1):
        q = x // 10
        out[:, col + j] = x - q * 10 + 48
        x = q


_US_PER_DAY = 86_400 * 10**6


def utc_texts(micros: np.ndarray, valid: np.ndarray) -> pa.Array:
    """The UTC instant of each of `micros` (since 1970-01-01T00:00Z, years 1 to 9999) as
    YYYY-MM-DDTHH:MM:SS.ffffff, null where not `valid`: numpy's datetime_as_string(unit="us")
    of the same instants, written digit by digit (in about half its time)."""
    n = len(micros)
    days, time_of_day = np.divmod(np.where(valid, micros, 0), _US_PER_DAY)
    seconds, fraction = np.divmod(time_of_day, 10**6)
    minutes, second = np.divmod(seconds, 60)
    hour, minute = np.divmod(minutes, 60)
    year, month, day = civil_from_days(days)
    out = np.empty((n, 26), dtype=np.uint8)
    for col, value, width in ((0, year, 4), (5, month, 2), (8, day, 2), (11, hour, 2), (14, minute, 2),
                              (17, second, 2), (20, fraction, 6)):
        put_digits(out, col, value, width)
    for col, mark in ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, ".")):
        out[:, col] = ord(mark)
    return fixed_width_texts(out, valid)


def fixed_width_texts(cells: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """An (n x w) uint8 matrix of ASCII -> a string array of its rows (a large_string one
    past 2**31 bytes), null where not `valid`."""
    n, w = cells.shape
    large = n * w >= 2**31
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64 if large else np.int32)
    nulls = 0 if valid is None else n - int(np.count_nonzero(valid))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    return pa.Array.from_buffers(pa.large_string() if large else pa.string(), n,
                                 [bitmap, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(cells))], nulls)
