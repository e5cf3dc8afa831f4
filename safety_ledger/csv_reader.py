"""Reads one contract CSV: UTF-8 (BOM allowed), RFC 4180 quoting, one header row.

The file is streamed: rows come in chunks, so a file of any size is read in bounded
memory. Cells come back as strings, an empty cell as None. A problem that spoils the
whole file (encoding, header) raises FileRejected; a row with the wrong number of cells
is returned for quarantine, not raised.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence


class FileRejected(Exception):
    """The whole file, and so its submission, cannot be accepted."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule
        self.message = message


class HeaderError(FileRejected):
    """The header breaks the contract: an error for the whole file (every row of it is
    quarantined with this reason), not for the submission."""


@dataclass
class Row:
    number: int                    # 1-based data row (header excluded)
    cells: dict[str, str | None]   # by column name; None for an empty cell
    shape_error: str | None = None  # set when the row has the wrong number of cells


@dataclass
class Chunk:
    """Consecutive data rows of one file, by column: the well-formed rows' cells, and
    the rows whose number of cells differs from the header's (kept whole, for quarantine)."""
    numbers: list[int]
    columns: dict[str, list[str | None]]
    misshapen: list[Row]

    @property
    def size(self) -> int:
        return len(self.numbers) + len(self.misshapen)

    def cells(self, i: int) -> dict[str, str | None]:
        """The cells of the i-th well-formed row."""
        return {c: v[i] for c, v in self.columns.items()}


# The contract sets no length limit on a cell; the csv module's default (128 KiB) is not ours.
csv.field_size_limit(2**31 - 1)


def _records(path: Path) -> Iterator[list[str]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            for record in csv.reader(f, strict=True):
                if record:  # a blank line is not a record
                    yield record
    except UnicodeDecodeError as e:
        raise FileRejected("file.encoding",
                           f"{path.name} is not valid UTF-8 (byte {e.start}): export it as UTF-8") from e
    except csv.Error as e:
        raise FileRejected("file.csv_syntax",
                           f"{path.name} is not valid RFC 4180 CSV ({e}): check quoting") from e


def count_rows(path: Path) -> int:
    """Number of data records (header excluded), as the manifest states it."""
    return max(sum(1 for _ in _records(path)) - 1, 0)


# A chunk ends at whichever comes first: so many rows, or so many bytes of cells (wide
# rows: a 1 KiB cell per row would otherwise make a 200,000-row chunk 200 MB of text,
# several times that as Python strings and a pandas frame).
CHUNK_ROWS = 200_000
CHUNK_BYTES = 32 * 2**20


def _check_header(path: Path, header: list[str] | None, expected_columns: Sequence[str]) -> list[str]:
    if header is None:
        raise HeaderError("file.header_missing", f"{path.name} is empty: it needs at least its header row")
    unknown = [h for h in header if h not in expected_columns]
    missing = [c for c in expected_columns if c not in header]
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if unknown or missing or duplicated:
        parts = []
        if unknown:
            parts.append(f"unknown column(s) {', '.join(unknown)}")
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if duplicated:
            parts.append(f"repeated column(s) {', '.join(duplicated)}")
        raise HeaderError("file.header",
                           f"{path.name} header has {'; '.join(parts)}: the header must have exactly "
                           f"the columns {', '.join(expected_columns)} (any order)")
    return header


def read_chunks(path: Path, expected_columns: Sequence[str], size: int = CHUNK_ROWS,
                max_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """The file's data rows, `size` at a time. The header is checked before any row is
    returned; an encoding or syntax error part-way raises FileRejected (the caller
    discards what it had read: the submission is rejected whole)."""
    records = _records(path)
    header = _check_header(path, next(records, None), expected_columns)
    width = len(header)
    numbers: list[int] = []
    good: list[list[str]] = []
    misshapen: list[Row] = []
    held = 0

    def chunk() -> Chunk:
        columns = [list(col) for col in zip(*good)] if good else [[] for _ in header]
        return Chunk(numbers, {h: [c if c != "" else None for c in col] for h, col in zip(header, columns)},
                     misshapen)

    for number, record in enumerate(records, start=1):
        if len(record) == width:
            numbers.append(number)
            good.append(record)
        else:
            misshapen.append(Row(number, dict(zip(header, [c or None for c in record])),
                                 f"{len(record)} cells where the header has {width}"))
        held += sum(map(len, record))
        if len(numbers) + len(misshapen) == size or held >= max_bytes:
            yield chunk()
            numbers, good, misshapen, held = [], [], [], 0
    if numbers or misshapen:
        yield chunk()


def read_raw(path: Path) -> Iterator[Row]:
    """Every data row under the header as sent, whatever the header says: for
    quarantining all rows of a file whose header breaks the contract."""
    records = _records(path)
    header = next(records, None) or []
    for number, record in enumerate(records, start=1):
        yield Row(number, dict(zip(header, [c if c != "" else None for c in record])))
