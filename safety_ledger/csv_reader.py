"""Reads one contract CSV: UTF-8 (BOM allowed), RFC 4180 quoting, one header row.

Rows come in chunks, each column an Arrow string array (null for an empty cell). A
problem that spoils the whole file (encoding, header) raises FileRejected; a row with
the wrong number of cells is returned for quarantine, not raised.

Two readers, which give the same chunks for the same file:
- Arrow's CSV reader, for a file of at most FAST_MAX_BYTES with no quote character,
  valid UTF-8 and every row as wide as its header (the common case: no quoting rules
  apply, so nothing can be read differently); the whole file is read at once;
- Python's csv module (RFC 4180, strict), streamed, for every other file: quoted
  fields, a misshapen row, an encoding or syntax error (whose message it words), or a
  file too large to hold.
"""
from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv


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
    """Consecutive data rows of one file, by column: the well-formed rows' numbers
    (ascending) and cells (Arrow strings, null where empty), and the rows whose number of
    cells differs from the header's (kept whole, for quarantine)."""
    numbers: np.ndarray
    columns: dict[str, pa.Array]
    misshapen: list[Row]

    @property
    def size(self) -> int:
        return len(self.numbers) + len(self.misshapen)

    def positions(self, numbers) -> np.ndarray:
        """Where the well-formed rows `numbers` are in the columns."""
        return np.searchsorted(self.numbers, np.asarray(numbers, dtype=np.int64))

    def cells(self, positions: np.ndarray) -> list[dict[str, str | None]]:
        """The cells of the well-formed rows at `positions`, one dict per row (taken by
        column: a quarantine of thousands of rows is not read cell by cell)."""
        taken = {c: v.take(pa.array(positions, type=pa.int64())).to_pylist() for c, v in self.columns.items()}
        return [dict(zip(taken, row)) for row in zip(*taken.values())] if taken else [{} for _ in positions]


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


FAST_MAX_BYTES = 64 * 2**20   # a larger file is streamed by the csv module (bounded memory)


def count_rows(path: Path) -> int:
    """Number of data records (header excluded), as the manifest states it."""
    data = _plain_bytes(path)
    if data is not None:   # no quoting: a record is a non-blank line
        return max(_non_blank_lines(data) - 1, 0)
    return max(sum(1 for _ in _records(path)) - 1, 0)


def _non_blank_lines(data: bytes) -> int:
    """How many lines of `data` are not empty (a line ends at \\n, \\r or \\r\\n): the runs of
    bytes other than those two, counted by numpy a mebibyte at a time (the block's masks
    stay in cache: 10 ms for 25 MB, where splitting it into Python bytes took 43 ms and
    masks of the whole file 21-88 ms)."""
    block = 2**20
    data = np.frombuffer(data, dtype=np.uint8)
    lines, after_end = 0, True   # whether the byte before the block ends a line (or is the start)
    for at in range(0, len(data), block):
        ends = data[at:at + block] == ord("\n")
        ends |= data[at:at + block] == ord("\r")
        lines += int(after_end and not ends[0]) + int(np.count_nonzero(ends[:-1] & ~ends[1:]))
        after_end = bool(ends[-1])
    return lines


def _plain_bytes(path: Path) -> bytes | None:
    """The file's bytes when no quoting or syntax rule of RFC 4180 can apply to it: at most
    FAST_MAX_BYTES, no quote character, valid UTF-8, and no NUL byte (a rare oddity, left
    to the reader of reference). None otherwise: the csv module must read it."""
    if path.stat().st_size > FAST_MAX_BYTES:
        return None
    data = path.read_bytes()
    if b'"' in data or b"\x00" in data or not _is_utf8(data):
        return None
    return data


def _is_utf8(data: bytes) -> bool:
    """Whether the bytes are valid UTF-8, as Python's strict decoder says, checked by
    Arrow without making the text (a fifth of the time of decoding it; both refuse
    surrogates, overlong forms and code points past U+10FFFF). At most FAST_MAX_BYTES."""
    text = pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(np.array([0, len(data)], dtype=np.int32)),
                                                  pa.py_buffer(data)])
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


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
    """The file's data rows, `size` rows or `max_bytes` of cells at a time. The header is
    checked before any row is returned; an encoding or syntax error part-way raises
    FileRejected (the caller discards what it had read: the submission is rejected whole)."""
    table = _read_plain(path, expected_columns)
    if table is None:
        yield from _read_with_csv_module(path, expected_columns, size, max_bytes)
        return
    widths = np.zeros(table.num_rows, dtype=np.int64)
    for column in table.columns:
        widths += pc.fill_null(pc.utf8_length(column), 0).to_numpy()
    held = np.cumsum(widths)
    start = 0
    while start < table.num_rows:
        # the chunk ends at `size` rows or when its cells reach max_bytes (that row included)
        by_bytes = int(np.searchsorted(held, (held[start - 1] if start else 0) + max_bytes)) + 1
        end = min(start + size, by_bytes, table.num_rows)
        piece = table.slice(start, end - start)
        yield Chunk(np.arange(start + 1, end + 1), {h: piece.column(h).combine_chunks() for h in table.column_names}, [])
        start = end


def _read_plain(path: Path, expected_columns: Sequence[str]) -> pa.Table | None:
    """The whole file through Arrow's CSV reader when no quoting rule can apply (see the
    module's docstring); None when the csv module must read it."""
    data = _plain_bytes(path)
    if data is None:
        return None
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    end = min((i for i in (data.find(b"\n", start), data.find(b"\r", start)) if i != -1), default=len(data))
    if end == start:
        return None   # blank lines before the header: the csv module finds it
    header = _check_header(path, data[start:end].decode("utf-8").split(","), expected_columns)
    try:
        return pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(data).slice(end)),   # the rows after the header line
            read_options=pacsv.ReadOptions(column_names=header),
            parse_options=pacsv.ParseOptions(quote_char=False, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header},
                                                 strings_can_be_null=True, null_values=[""]))
    except pa.ArrowInvalid:   # a row of another width
        return None


def _read_with_csv_module(path: Path, expected_columns: Sequence[str], size: int,
                          max_bytes: int) -> Iterator[Chunk]:
    records = _records(path)
    header = _check_header(path, next(records, None), expected_columns)
    width = len(header)
    numbers: list[int] = []
    good: list[list[str]] = []
    misshapen: list[Row] = []
    held = 0

    def chunk() -> Chunk:
        columns = [list(col) for col in zip(*good)] if good else [[] for _ in header]
        return Chunk(np.array(numbers, dtype=np.int64),
                     {h: pa.array([c if c != "" else None for c in col], type=pa.string())
                      for h, col in zip(header, columns)}, misshapen)

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
