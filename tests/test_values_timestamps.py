"""A timestamp cell's instant and validity (safety_ledger/values.py: timestamp_micros,
vectorized over the bytes of the texts), and an instant's canonical UTC text (utc_texts,
part of the content hash). Expected instants and texts are worked out by hand from the
calendar; generated sweeps are checked against Python's own ISO 8601 reading and writing
and numpy's datetime_as_string (the text's definition)."""
from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest

from safety_ledger.values import SHAPES, Invalid, parse_timestamp, timestamp_micros, utc_texts

DAY = 86_400 * 10**6
HOUR = 3_600 * 10**6
# 1970-01-01 to 2024-01-01: 54 years, 13 of them leap (1972 ... 2020): 19,723 days;
# then January (31) and February 2024 (29): 2024-03-01T00:00Z is day 19,783.
MARCH_2024 = 19_783 * DAY

VALID = [
    ("1970-01-01T00:00Z", 0),
    ("1970-01-01T00:00:00.000001Z", 1),
    ("1970-01-01T00:00:00.5+00:00", 500_000),
    ("1969-12-31T23:59:59.5-00:00", -500_000),
    ("2024-03-01T08:00+08:00", MARCH_2024),                        # 08:00 at +08:00 is midnight UTC
    ("2024-02-29T23:30-05:30", MARCH_2024 + 5 * HOUR),             # leap day, west of UTC: next day at UTC
    ("2024-03-01T00:00:07.123456Z", MARCH_2024 + 7_123_456),
    ("2000-02-29T00:00Z", 11_016 * DAY),                           # 30 years, 7 leap: 10,957 days + 59
    ("0001-01-01T00:00Z", -719_162 * DAY),                         # Python's datetime.min
    ("9999-12-31T23:59:59.999999Z", 2_932_897 * DAY - 1),          # Python's datetime.max
]

INVALID = [
    "2023-02-29T10:00Z",             # not a leap year
    "1900-02-29T10:00Z",             # a century that is not a leap year
    "2024-04-31T10:00Z",             # April has 30 days
    "2024-13-01T10:00Z", "2024-00-10T10:00Z", "2024-01-00T10:00Z",
    "2024-01-01T24:00Z", "2024-01-01T23:60Z", "2024-01-01T23:59:60Z",
    "2024-01-01T10:00+24:00",        # an offset is below 24 hours
    "2024-01-01T10:00+05:60",        # minutes of an offset are 0 to 59
    "0000-06-01T00:00Z",             # there is no year 0
    "0001-01-01T00:30+01:00",        # its instant is in year 0 at UTC
    "9999-12-31T23:30-00:31",        # its instant is in year 10000 at UTC
    "2024-01-01T10:00",              # no offset
    "2024-01-01 10:00Z", "2024-01-01T10:00z", " 2024-01-01T10:00Z", "2024-01-01T10:00Z ",
    "2024-01-01T10:00:00.1234567Z",  # seven digits of fraction
    "2024-01-01T10Z", "", None,
]


def _micros(texts):
    micros, valid = timestamp_micros(pa.array(texts, pa.string()))
    return [int(m) if v else None for m, v in zip(micros, valid)]


def test_instants_worked_out_by_hand():
    assert _micros([t for t, _ in VALID]) == [m for _, m in VALID]


def test_texts_that_do_not_parse():
    assert _micros(INVALID) == [None] * len(INVALID)


def test_a_slice_of_an_arrow_array_reads_its_own_texts():
    texts = pa.array(["x", VALID[4][0], VALID[5][0], "2023-02-29T10:00Z"], pa.string()).slice(1, 3)
    micros, valid = timestamp_micros(texts)
    assert list(valid) == [True, True, False]
    assert list(micros[:2]) == [VALID[4][1], VALID[5][1]]


def test_the_manifest_reads_timestamps_by_the_same_rule():
    assert parse_timestamp("2024-02-29T23:30-05:30") == datetime(2024, 3, 1, 5, tzinfo=timezone.utc)
    for text in ("2024-01-01T10:00+05:60", "0001-01-01T00:30+01:00", "2023-02-29T10:00Z"):
        with pytest.raises(Invalid):
            parse_timestamp(text)


def _python_reading(text: str) -> int | None:
    """Python's reading of an ISO 8601 text of the contract's shape, as microseconds at UTC;
    None where Python refuses it, where the offset's minutes are over 59 (Python carries
    them into the hour: +05:60 is +06:00) or where the UTC instant leaves years 1 to 9999."""
    if not re.fullmatch(SHAPES["timestamp"], text):
        return None
    if not text.endswith("Z") and int(text[-2:]) > 59:
        return None
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
    return (instant - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)


def _generated(rnd: random.Random) -> str:
    """A text near the contract's shape, each field sometimes out of its range."""
    year = rnd.choice([f"{rnd.randint(0, 9999):04d}", "2024", "2023", "2000", "1900", "0001", "9999", "0000"])
    text = f"{year}-{rnd.randint(0, 13):02d}-{rnd.randint(0, 32):02d}T{rnd.randint(0, 25):02d}:{rnd.randint(0, 61):02d}"
    if rnd.random() < 0.7:
        text += f":{rnd.randint(0, 61):02d}"
        if rnd.random() < 0.4:
            text += "." + "".join(rnd.choice("0123456789") for _ in range(rnd.randint(1, 7)))
    sign = rnd.choice("+-")
    return text + rnd.choice(["Z", f"{sign}{rnd.randint(0, 25):02d}:{rnd.randint(0, 61):02d}", "", "z"])


def test_agrees_with_pythons_reading_of_generated_texts():
    texts = [_generated(random.Random(seed)) for seed in range(20_000)]
    got = _micros(texts)
    expected = [_python_reading(t) for t in texts]
    assert sum(e is not None for e in expected) > 5_000   # the sweep holds many valid texts too
    assert [(t, g) for t, g, e in zip(texts, got, expected) if g != e] == []


def test_utc_texts_of_instants_worked_out_by_hand():
    # the instants of VALID, written back at UTC; a null stays null
    micros = np.array([m for _, m in VALID] + [0], dtype=np.int64)
    valid = np.array([True] * len(VALID) + [False])
    assert utc_texts(micros, valid).to_pylist() == [
        "1970-01-01T00:00:00.000000", "1970-01-01T00:00:00.000001", "1970-01-01T00:00:00.500000",
        "1969-12-31T23:59:59.500000", "2024-03-01T00:00:00.000000", "2024-03-01T05:00:00.000000",
        "2024-03-01T00:00:07.123456", "2000-02-29T00:00:00.000000", "0001-01-01T00:00:00.000000",
        "9999-12-31T23:59:59.999999", None]


def test_utc_texts_agree_with_python_and_numpy_over_the_whole_range():
    rnd = random.Random(5)
    micros = np.array([rnd.randint(-62_135_596_800 * 10**6, 253_402_300_799 * 10**6) for _ in range(20_000)])
    valid = np.array([rnd.random() > 0.1 for _ in micros])
    epoch = datetime(1970, 1, 1)
    python = [(epoch + timedelta(microseconds=int(m))).strftime("%Y-%m-%dT%H:%M:%S.%f").rjust(26, "0")
              for m in micros]
    numpy = list(np.datetime_as_string(micros.view("datetime64[us]"), unit="us"))
    assert python == numpy
    assert utc_texts(micros, valid).to_pylist() == [t if v else None for t, v in zip(numpy, valid)]
