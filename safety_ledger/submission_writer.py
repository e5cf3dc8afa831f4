"""Write a contract-v1 submission folder: CSV files first, manifest.json last.

Used by the seed sample, the synthetic generator and the tests, so that all of them
produce exactly what a site would send.

Two ways to give a file's rows, which write the same bytes for the same cells:

- rows as dicts (or sequences), formatted cell by cell with the `csv` module
  (`csv_bytes`): for a few rows, hand-written samples and tests;
- columns as Arrow arrays (a `pyarrow.Table`, a `RecordBatch`, or `Chunks` of them),
  formatted a whole column at a time with numpy, no Python loop per row
  (`table_csv_bytes`, `write_csv`): for the generator's millions of rows.

Either way: RFC 4180 with CRLF line ends, a field quoted only when it holds `,`, `"`, CR
or LF (as `csv.writer` does, quotes doubled inside), an empty cell for None/null, lists
joined with `;`, booleans `true`/`false`.

Cell text of the Arrow types, and the dict-row value that writes the same bytes:

| Arrow type | cell | dict-row value |
|---|---|---|
| string, large_string, dictionary of strings | the text | the `str` |
| int8 ... uint64 | decimal digits | the `int` |
| bool | `true` / `false` | the `bool` |
| date32 | `YYYY-MM-DD` | a `datetime.date` or its `isoformat()` |
| timestamp[s] with tz `+HH:MM`/`-HH:MM`/`UTC` | local time `YYYY-MM-DDTHH:MM:SS+HH:MM` | its `isoformat()` string |
| timestamp[s] without tz | `YYYY-MM-DDTHH:MM:SS` | its `isoformat()` string |
| decimal128 | the `decimal.Decimal` text (`56.0`) | the `Decimal` |
| list of strings | tokens joined with `;` | the `list` |
| float, double | `str(float)` (formatted in Python: slow) | the `float` |
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import contract
from .atomic import fsync_dir, write_bytes
from .values import civil_from_days as _civil, put_digits as _put
from .faults import disk_full, fault_point


def csv_bytes(header: Sequence[str], rows: Iterable[Mapping[str, object] | Sequence[object]]) -> tuple[bytes, int]:
    """RFC 4180 CSV (CRLF line ends, minimal quoting) and its number of data rows.

    Rows are dicts by column name or sequences in header order; None is an empty cell,
    lists are joined with ';', booleans are written true/false.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    n = 0
    for row in rows:
        values = [row.get(c) for c in header] if isinstance(row, Mapping) else list(row)
        writer.writerow([_cell(v) for v in values])
        n += 1
    return buf.getvalue().encode("utf-8"), n


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return str(value)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------
# Vectorized CSV: every column becomes a block, an (n x width) uint8 matrix holding each
# cell's bytes, padded with FILL; a chunk's blocks are laid side by side with the commas
# and CRLF, and the FILL bytes are dropped. 0xFF never occurs in UTF-8 text.
# --------------------------------------------------------------------------------------
FILL = 0xFF
CHUNK_ROWS = 65_536            # rows per chunk when a caller gives one large table
_NEEDS_QUOTES = '[,"\r\n]'      # what makes csv.writer (QUOTE_MINIMAL, CRLF) quote a field
_SPECIAL = (b",", b'"', b"\r", b"\n")
_TZ = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def _small_ints() -> np.ndarray:
    """0..9999 as 4 right-aligned digit bytes with leading FILL, one uint32 per number."""
    v = np.arange(10_000)
    out = np.full((10_000, 4), FILL, dtype=np.uint8)
    for j in range(4):
        place = 10 ** (3 - j)
        out[:, j] = np.where((v >= place) | (j == 3), v // place % 10 + 48, FILL)
    return out.view(np.uint32).reshape(-1)


_TIMES_OF_DAY: dict[bytes, np.ndarray] = {}   # offset text -> "THH:MM:SS<offset>" of each second of a day


def _times_of_day(suffix: bytes) -> np.ndarray:
    table = _TIMES_OF_DAY.get(suffix)
    if table is None:
        v = np.arange(86_400)
        table = np.empty((86_400, 9 + len(suffix)), dtype=np.uint8)
        table[:, 0] = ord("T")
        for col, part in ((1, v // 3600), (4, v // 60 % 60), (7, v % 60)):
            table[:, col] = part // 10 + 48
            table[:, col + 1] = part % 10 + 48
        table[:, 3] = table[:, 6] = ord(":")
        table[:, 9:] = np.frombuffer(suffix, dtype=np.uint8)
        _TIMES_OF_DAY[suffix] = table
    return table


def _items(block: np.ndarray) -> np.ndarray:
    """An (n x w) uint8 block as n items of w bytes (numpy then copies a row in one go
    instead of looping over its bytes); without a copy when each row's bytes are contiguous."""
    n, w = block.shape
    if block.flags.c_contiguous:
        return block.view(f"V{w}").reshape(n)
    if block.strides[1] == 1 and n:
        owner = block
        while isinstance(owner.base, np.ndarray):
            owner = owner.base
        if owner.flags.c_contiguous:
            return np.ndarray(shape=(n,), dtype=f"V{w}", buffer=owner, strides=(block.strides[0],),
                              offset=block.ctypes.data - owner.ctypes.data)
    return np.ascontiguousarray(block).view(f"V{w}").reshape(n)


def _gather(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Rows `index` of a (k x w) uint8 table, each row taken as one w-byte item (a few
    times faster than table[index])."""
    k, w = table.shape
    if w == 0:
        return np.empty((len(index), 0), dtype=np.uint8)
    return np.take(_items(table), index).view(np.uint8).reshape(len(index), w)


def _place(out: np.ndarray, col: int, block: np.ndarray) -> None:
    """out[:, col:col + w] = block, each row's w bytes copied as one item."""
    n, w = block.shape
    if w == 0 or n == 0:
        return
    dst = np.ndarray(shape=(n,), dtype=f"V{w}", buffer=out, offset=col, strides=(out.shape[1],))
    dst[...] = _items(block)


def _place_bytes(out: np.ndarray, col: int, value: bytes) -> None:
    """The same bytes in every row: out[:, col:col + len(value)] = value."""
    if not value or not len(out):
        return
    dst = np.ndarray(shape=(len(out),), dtype=f"V{len(value)}", buffer=out, offset=col, strides=(out.shape[1],))
    dst[...] = np.frombuffer(value, dtype=f"V{len(value)}")[0]


_SMALL_INTS = _small_ints()
_DICTIONARY_BLOCKS: dict[tuple, np.ndarray] = {}   # dictionary content -> its block


@dataclass(frozen=True)
class Patched:
    """A column given as `base` with the cells at positions `rows` replaced by the
    texts `cells` (written as they are, apart from CSV quoting). For a few odd cells in
    a typed column, e.g. a timestamp sent without its offset."""
    base: pa.Array
    rows: np.ndarray
    cells: Sequence[str] | pa.Array

    def __len__(self) -> int:
        return len(self.base)


Column = Union[pa.Array, pa.ChunkedArray, Patched]
Chunk = Union[pa.Table, pa.RecordBatch, Mapping[str, Column]]


class Chunks:
    """A file's rows as consecutive column chunks (each a Table, a RecordBatch or a
    mapping column -> Arrow array or `Patched`), produced lazily, so that a large file is
    formatted and written a chunk at a time."""

    def __init__(self, chunks: Iterable[Chunk]):
        self._chunks = chunks

    def __iter__(self) -> Iterator[Chunk]:
        return iter(self._chunks)


def string_array(texts: Sequence[str]) -> pa.Array:
    """Python strings -> an Arrow string array, built from its buffers (pa.array() on a
    list would import pandas, half a second, in every worker process)."""
    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return pa.Array.from_buffers(pa.large_string(), len(encoded),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def _fill(n: int, width: int) -> np.ndarray:
    return np.full((n, width), FILL, dtype=np.uint8)


def _valid_mask(arr: pa.Array) -> np.ndarray | None:
    """Boolean array, True where the cell is null; None when there is no null."""
    if arr.null_count == 0:
        return None
    validity = arr.buffers()[0]
    if validity is None:    # the null type: every cell is null
        return np.ones(len(arr), dtype=bool)
    return _bits(validity, arr.offset, len(arr)) == 0


def _quote(arr: pa.Array) -> pa.Array:
    needs = pc.match_substring_regex(arr, _NEEDS_QUOTES)
    if not pc.any(needs).as_py():
        return arr
    quote, nothing = pa.scalar('"', type=arr.type), pa.scalar("", type=arr.type)
    quoted = pc.binary_join_element_wise(quote, pc.replace_substring(arr, '"', '""'), quote, nothing)
    return pc.if_else(needs, quoted, arr)


def _string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets as int64, data) of a string or large_string array without nulls."""
    _, off_buf, data_buf = arr.buffers()
    off_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(off_buf, dtype=off_type)[arr.offset: arr.offset + len(arr) + 1].astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return offsets, data


def _needs_quotes(data: np.ndarray) -> bool:
    raw = data.tobytes()
    return any(c in raw for c in _SPECIAL)


def _string_block(arr: pa.Array, quote: bool) -> np.ndarray:
    n = len(arr)
    if n == 0:
        return _fill(0, 0)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.large_string())
    if arr.null_count:
        arr = pc.fill_null(arr, "")
    offsets, data = _string_buffers(arr)
    if quote and _needs_quotes(data[offsets[0]:offsets[-1]]):
        arr = _quote(arr)
        offsets, data = _string_buffers(arr)
    lengths = np.diff(offsets)
    width = int(lengths.max())
    if width == 0:
        return _fill(n, 0)
    start = int(offsets[0])
    if (lengths == width).all():    # fixed width: the data buffer is the block
        return data[start: start + n * width].reshape(n, width)
    out = _fill(n, width)
    cols = np.arange(width)
    step = max(1, (1 << 22) // width)   # bound the index arrays
    for a in range(0, n, step):
        b = min(n, a + step)
        inside = cols < lengths[a:b, None]
        out[a:b][inside] = data[(offsets[a:b, None] + cols)[inside]]
    return out


def _digits(mag: np.ndarray) -> np.ndarray:
    """Non-negative integers (uint64) -> right-aligned decimal digits, leading FILL."""
    n = len(mag)
    top = int(mag.max()) if n else 0
    width = len(str(top))
    if top < 10_000:
        return np.take(_SMALL_INTS, mag).view(np.uint8).reshape(n, 4)[:, 4 - width:]
    x = mag.astype(np.uint32) if top < 2 ** 32 else mag.copy()
    out = np.empty((n, width), dtype=np.uint8)
    for j in range(width - 1, -1, -1):
        q = x // 10
        out[:, j] = x - q * 10 + 48
        x = q
    for j in range(width - 1):
        out[mag < 10 ** (width - 1 - j), j] = FILL
    return out


def _int_block(values: np.ndarray, null: np.ndarray | None) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind == "u":
        mag, neg = values.astype(np.uint64), None
    else:
        values = values.astype(np.int64)
        mag = np.abs(values).astype(np.uint64)   # abs(int64 min) wraps to int64 min = 2**63 as uint64
        neg = values < 0
    if null is not None:
        mag = np.where(null, 0, mag)
    out = _digits(mag)
    if neg is not None and neg.any():
        signed = np.empty((len(out), out.shape[1] + 1), dtype=np.uint8)
        signed[:, 0] = np.where(neg, ord("-"), FILL)
        _place(signed, 1, out)
        out = signed
    if null is not None:
        out[null] = FILL
    return out


_DAYS: list[np.ndarray] = []     # YYYY-MM-DD of the days 1970-01-01 + 0 .. 65535 (to 2149), made once


def _date_cells(days: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 -> (n x 10) YYYY-MM-DD; distinct days are formatted once."""
    n = len(days)
    if n == 0:
        return np.empty((0, 10), dtype=np.uint8)
    first, last = int(days.min()), int(days.max())
    if 0 <= first and last < 65_536:
        if not _DAYS:
            _DAYS.append(_days_table(np.arange(65_536)))
        return _gather(_DAYS[0], days)
    if last - first < 4 * n:      # a table of the days in range, then a gather
        distinct = np.arange(first, last + 1)
        index = days - first
    else:
        distinct, index = np.unique(days, return_inverse=True)
    return _gather(_days_table(distinct), index.reshape(-1))


def _days_table(distinct: np.ndarray) -> np.ndarray:
    year, month, day = _civil(distinct)
    if year.min() < 1 or year.max() > 9999:
        raise ValueError("dates before year 1 or after 9999 cannot be written")
    table = np.empty((len(distinct), 10), dtype=np.uint8)
    _put(table, 0, year, 4)
    table[:, 4] = table[:, 7] = ord("-")
    _put(table, 5, month, 2)
    _put(table, 8, day, 2)
    return table


def _date_block(days: np.ndarray, null: np.ndarray | None, time_of_day: np.ndarray | None = None,
                suffix: bytes = b"") -> np.ndarray:
    if null is not None:
        days = np.where(null, 0, days)
    dates = _date_cells(np.asarray(days, dtype=np.int64))
    if time_of_day is None:
        out = dates
    else:
        times = _gather(_times_of_day(suffix), time_of_day)
        out = np.empty((len(dates), 10 + times.shape[1]), dtype=np.uint8)
        _place(out, 0, dates)
        _place(out, 10, times)
    if null is not None:
        out = out.copy() if not out.flags.writeable else out
        out[null] = FILL
    return out


def _timestamp_block(arr: pa.Array, null: np.ndarray | None) -> np.ndarray:
    t = arr.type
    if t.unit != "s":
        raise TypeError(f"timestamps are written to the second: give timestamp[s], not {t}")
    seconds = _numbers(arr.view(pa.int64()))
    if t.tz is None:
        offset, suffix = 0, b""
    elif t.tz in ("UTC", "+00:00", "Z"):
        offset, suffix = 0, b"+00:00"
    else:
        m = _TZ.match(t.tz)
        if not m:
            raise TypeError(f"time zone {t.tz!r}: only fixed offsets (+08:00) or UTC are written")
        offset = (1 if m.group(1) == "+" else -1) * (int(m.group(2)) * 3600 + int(m.group(3)) * 60)
        suffix = t.tz.encode()
    days, time_of_day = np.divmod(seconds + offset, 86_400)
    return _date_block(days, null, time_of_day, suffix)


def _decimal_block(arr: pa.Array, null: np.ndarray | None) -> np.ndarray | None:
    """Fast path for decimal128 of scale 0..6 whose values fit in int64, else None."""
    scale = arr.type.scale
    if not pa.types.is_decimal128(arr.type) or not 0 <= scale <= 6:
        return None
    words = np.frombuffer(arr.buffers()[1], dtype=np.int64).reshape(-1, 2)[arr.offset: arr.offset + len(arr)]
    low, high = words[:, 0], words[:, 1]
    fits = high == (low >> 63)
    if null is not None:
        fits |= null
    if not fits.all():
        return None
    mag = np.abs(low).astype(np.uint64)
    if null is not None:
        mag = np.where(null, 0, mag)
    unit = np.uint64(10 ** scale)
    whole = _digits(mag // unit)
    n, ww = whole.shape
    out = np.empty((n, 1 + ww + (1 + scale if scale else 0)), dtype=np.uint8)
    out[:, 0] = np.where(low < 0, ord("-"), FILL)      # the sign, before the whole part's leading FILL
    _place(out, 1, whole)
    if scale:
        out[:, 1 + ww] = ord(".")
        _put(out, 2 + ww, mag % unit, scale)
    if null is not None:
        out[null] = FILL
    return out


def _block(arr: Column, quote: bool = True) -> np.ndarray:
    """One column as an (n x width) block of cell bytes padded with FILL."""
    if isinstance(arr, Patched):
        base = _block(arr.base, quote)
        cells = arr.cells if isinstance(arr.cells, pa.Array) else string_array([str(c) for c in arr.cells])
        patch = _block(cells, quote)
        width = max(base.shape[1], patch.shape[1])
        out = _fill(len(base), width)
        out[:, :base.shape[1]] = base
        out[np.asarray(arr.rows, dtype=np.int64), :patch.shape[1]] = patch
        out[np.asarray(arr.rows, dtype=np.int64), patch.shape[1]:] = FILL
        return out
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if not isinstance(arr, pa.Array):
        raise TypeError(f"a column must be a pyarrow Array, not {type(arr).__name__}")
    t, n = arr.type, len(arr)
    null = _valid_mask(arr)
    if pa.types.is_null(t):
        return _fill(n, 0)
    if pa.types.is_dictionary(t):
        vocab = _dictionary_block(arr.dictionary, quote)            # its last row is for null
        indices = arr.indices
        codes = _numbers(indices if indices.null_count == 0 else pc.fill_null(indices, len(vocab) - 1))
        return _gather(vocab, codes)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return _string_block(arr, quote)
    if pa.types.is_boolean(t):
        table = np.array([list(b"false"), list(b"true") + [FILL]], dtype=np.uint8)
        values = arr if null is None else pc.fill_null(arr, False)
        out = _gather(table, _bits(values.buffers()[1], values.offset, len(values)))
        if null is not None:
            out[null] = FILL
        return out
    if pa.types.is_integer(t):
        return _int_block(_numbers(arr), null)
    if pa.types.is_date32(t):
        return _date_block(_numbers(arr.cast(pa.int32())), null)
    if pa.types.is_timestamp(t):
        return _timestamp_block(arr, null)
    if pa.types.is_decimal(t):
        fast = _decimal_block(arr, null)
        if fast is not None:
            return fast
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        values = arr.values if arr.offset == 0 else arr.flatten()
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            raise TypeError(f"lists are written as ';'-joined strings: give list<string>, not {t}")
        if arr.flatten().null_count:
            raise ValueError("a list cell holds a null item")
        return _string_block(pc.binary_join(arr, ";"), quote)
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        # str(float) / str(Decimal), exactly as a dict row would write it (slow)
        return _string_block(string_array([_cell(v) for v in arr.to_pylist()]), quote)
    raise TypeError(f"no CSV cell format for Arrow type {t}")


def _bits(buf: pa.Buffer, offset: int, n: int) -> np.ndarray:
    """A bitmap (validity or booleans) as n uint8 0/1."""
    return np.unpackbits(np.frombuffer(buf, dtype=np.uint8), bitorder="little")[offset: offset + n]


def _numbers(arr: pa.Array) -> np.ndarray:
    """An integer (or integer-backed) array's values as numpy, 0 where null (read from its
    buffer: to_numpy() would import pandas)."""
    if arr.null_count:
        arr = pc.fill_null(arr, 0)
    t = arr.type
    width = t.bit_width // 8
    kind = "u" if pa.types.is_unsigned_integer(t) else "i"
    return np.frombuffer(arr.buffers()[1], dtype=f"<{kind}{width}")[arr.offset: arr.offset + len(arr)]


def _dictionary_block(vocab: pa.Array, quote: bool) -> np.ndarray:
    """The block of a dictionary's values plus a FILL row (for null), cached by content."""
    if vocab.null_count or not (pa.types.is_string(vocab.type) or pa.types.is_large_string(vocab.type)) \
            or len(vocab) > 4096:
        block = _block(vocab, quote)
        return np.concatenate([block, _fill(1, block.shape[1])])
    offsets, data = _string_buffers(vocab)
    key = (quote, (offsets - offsets[0]).tobytes(), data[offsets[0]:offsets[-1]].tobytes())
    block = _DICTIONARY_BLOCKS.get(key)
    if block is None:
        block = _block(vocab, quote)
        block = np.concatenate([block, _fill(1, block.shape[1])])
        if len(_DICTIONARY_BLOCKS) > 1024:
            _DICTIONARY_BLOCKS.clear()
        _DICTIONARY_BLOCKS[key] = block
    return block


def cell_texts(arr: Column) -> list[str]:
    """The unquoted text the writer gives each cell of `arr` (for a few cells: a loop)."""
    block = _block(arr, quote=False)
    n, w = block.shape
    marked = np.empty((n, w + 1), dtype=np.uint8)    # each cell then 0xFE, which UTF-8 never holds
    _place(marked, 0, block)
    marked[:, w] = 0xFE
    flat = marked.reshape(-1)
    return [cell.decode("utf-8") for cell in flat[flat != FILL].tobytes().split(b"\xfe")[:-1]]


def _join(blocks: list[np.ndarray], n: int, cuts: Sequence[int] = ()) -> list[np.ndarray]:
    """Blocks side by side with commas and CRLF, FILL dropped: the CSV bytes of the rows
    between consecutive cuts (0 and n added), one array per range."""
    bounds = sorted({0, n, *cuts})
    if n == 0:
        return [np.zeros(0, dtype=np.uint8) for _ in bounds[1:]] or [np.zeros(0, dtype=np.uint8)]
    if len(blocks) == 1:   # csv.writer quotes a row's only field when it is empty
        b = blocks[0]
        empty = (b == FILL).all(axis=1)
        if empty.any():
            b = np.concatenate([b, _fill(n, max(0, 2 - b.shape[1]))], axis=1)
            b[empty, :2] = ord('"')
            blocks = [b]
    width = sum(b.shape[1] for b in blocks) + len(blocks) + 1
    out = np.empty((n, width), dtype=np.uint8)
    pos = 0
    for j, b in enumerate(blocks):
        if j:
            out[:, pos] = ord(",")
            pos += 1
        _place(out, pos, b)
        pos += b.shape[1]
    out[:, pos] = 13
    out[:, pos + 1] = 10
    return [_drop_fill(out[a:b].reshape(-1)) for a, b in zip(bounds, bounds[1:])]


def _drop_fill(flat: np.ndarray) -> np.ndarray:
    keep = flat != FILL
    if keep.all():
        return flat
    # Arrow's filter kernel drops the FILL bytes about twice as fast as numpy's boolean index
    mask = pa.BooleanArray.from_buffers(pa.bool_(), len(keep), [None, pa.py_buffer(np.packbits(keep, bitorder="little"))])
    kept = pc.filter(pa.Array.from_buffers(pa.uint8(), len(flat), [None, pa.py_buffer(flat)]), mask)
    return np.frombuffer(kept.buffers()[1], dtype=np.uint8)[kept.offset: kept.offset + len(kept)]


def _chunk_columns(header: Sequence[str], chunk: Chunk) -> tuple[list[Column], int]:
    if isinstance(chunk, (pa.Table, pa.RecordBatch)):
        names = set(chunk.schema.names)
        n = chunk.num_rows
        return [chunk.column(c) if c in names else pa.nulls(n) for c in header], n
    lengths = {len(v) for v in chunk.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns of one chunk differ in length: {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    return [chunk[c] if c in chunk else pa.nulls(n) for c in header], n


@dataclass(frozen=True)
class Encoded:
    """Data rows already formatted by `encode_rows`: their CSV bytes and how many rows."""
    data: np.ndarray
    rows: int


def encode_rows(header: Sequence[str], chunk: Chunk, cuts: Sequence[int] = ()) -> list[Encoded]:
    """The CSV bytes of a chunk's rows (no header), as one `Encoded` per range of rows
    between consecutive `cuts`: one formatting pass for rows that go to several files."""
    columns, n = _chunk_columns(header, chunk)
    bounds = sorted({0, n, *cuts})
    pieces = _join([_block(c) for c in columns], n, bounds)
    return [Encoded(data, b - a) for data, a, b in zip(pieces, bounds, bounds[1:])]


def _chunk_bytes(header: Sequence[str], chunk: Chunk | Encoded) -> Iterator[tuple[np.ndarray, int]]:
    """(CSV bytes, rows) of a chunk, split into pieces of at most CHUNK_ROWS rows."""
    if isinstance(chunk, Encoded):
        yield chunk.data, chunk.rows
        return
    columns, n = _chunk_columns(header, chunk)
    if n <= CHUNK_ROWS or any(isinstance(c, Patched) for c in columns):
        yield _join([_block(c) for c in columns], n)[0], n
        return
    for a in range(0, n, CHUNK_ROWS):
        b = min(n, a + CHUNK_ROWS)
        yield _join([_block(c.slice(a, b - a)) for c in columns], b - a)[0], b - a


def _chunks_of(rows) -> Iterable[Chunk]:
    if isinstance(rows, (pa.Table, pa.RecordBatch)):
        return [rows]
    return rows


def table_csv_bytes(header: Sequence[str], rows: pa.Table | pa.RecordBatch | Chunks) -> tuple[bytes, int]:
    """The vectorized counterpart of `csv_bytes`: the same bytes for the same cells."""
    parts = [csv_bytes(header, [])[0]]
    n = 0
    for chunk in _chunks_of(rows):
        for data, k in _chunk_bytes(header, chunk):
            parts.append(np.asarray(data).tobytes())
            n += k
    return b"".join(parts), n


def _is_arrow(rows) -> bool:
    return isinstance(rows, (pa.Table, pa.RecordBatch, Chunks))


class CsvWriter:
    """One CSV file written a piece at a time: the header, then `write(rows)` as often as
    needed (a Table, RecordBatch, column mapping or `Encoded` rows), then `close()`, which
    renames it into place and returns (sha256 hex of the bytes written, data rows). Until
    then it lives under a temporary name, so a reader sees the whole file or none;
    `fsync=False` skips the flush to disk. The folder must exist."""

    def __init__(self, target: Path, header: Sequence[str], fsync: bool = True):
        self.target, self.header, self.fsync = Path(target), tuple(header), fsync
        disk_full(self.target)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent)
        self._file = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self.rows = 0
        self._put(csv_bytes(self.header, [])[0])

    def _put(self, data) -> None:
        self._digest.update(data)
        self._file.write(data)

    def write(self, rows: Chunk | Encoded) -> None:
        for data, n in _chunk_bytes(self.header, rows):
            self._put(data)
            self.rows += n

    def close(self) -> tuple[str, int]:
        try:
            fault_point("mid_write")
            if self.fsync:
                self._file.flush()
                os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self.target)
            if self.fsync:
                fsync_dir(self.target.parent)
        finally:
            self.abort()
        return self._digest.hexdigest(), self.rows

    def abort(self) -> None:
        """Drop the file (nothing is left under its name or the temporary one)."""
        self._file.close()
        Path(self._tmp).unlink(missing_ok=True)

    def __enter__(self) -> "CsvWriter":
        return self

    def __exit__(self, kind, *_exc) -> None:
        if kind is not None:
            self.abort()


def write_csv(target: Path, header: Sequence[str], rows: pa.Table | pa.RecordBatch | Chunks,
              fsync: bool = True) -> tuple[str, int]:
    """Stream a CSV to `target` a chunk at a time, hashing the bytes as they are written;
    returns (sha256 hex, data rows). See CsvWriter."""
    with CsvWriter(target, header, fsync) as writer:
        for chunk in _chunks_of(rows):
            writer.write(chunk)
        return writer.close()


def write_manifest(folder: Path, site_id: str, submission_id: str, exported_at: str,
                   listed: Mapping[str, Mapping[str, object]], fsync: bool = True) -> Path:
    """Write the submission's manifest.json (last: its files must be in place), listing
    each file's {"sha256", "rows"}."""
    manifest = {"schema_version": contract.SCHEMA_VERSION, "site_id": site_id,
                "submission_id": submission_id, "exported_at": exported_at, "files": dict(listed)}
    _write_small(Path(folder) / contract.MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"), fsync)
    return Path(folder)


def _write_small(target: Path, data: bytes, fsync: bool) -> None:
    if fsync:
        write_bytes(target, data)
        return
    disk_full(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_submission(landing: Path, site_id: str, submission_id: str, exported_at: str,
                     files: Mapping[str, Iterable[Mapping[str, object]] | pa.Table | pa.RecordBatch | Chunks],
                     header_order: Mapping[str, Sequence[str]] | None = None, fsync: bool = True) -> Path:
    """Write `<landing>/<site_id>/<submission_id>/` with one CSV per entry of `files`
    (file name -> rows as dicts, or an Arrow table, record batch or `Chunks`) and a
    manifest listing each one's SHA-256 and row count. The manifest is written last, so
    a reader never sees a half-written submission. `fsync=False` renames each file into
    place without flushing it to disk first (the synthetic generator, whose output can
    be written again from its seed)."""
    folder = Path(landing) / site_id / submission_id
    folder.mkdir(parents=True, exist_ok=True)
    listed = {}
    for name, rows in files.items():
        header = (header_order or {}).get(name) or contract.FILES[name].column_names
        if _is_arrow(rows):
            digest, n = write_csv(folder / name, header, rows, fsync=fsync)
        else:
            data, n = csv_bytes(header, rows)
            _write_small(folder / name, data, fsync)
            digest = sha256_hex(data)
        listed[name] = {"sha256": digest, "rows": n}
    return write_manifest(folder, site_id, submission_id, exported_at, listed, fsync)
