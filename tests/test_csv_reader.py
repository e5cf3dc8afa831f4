"""The two CSV readers give the same chunks.

A quote-free file is read by Arrow, any other by the csv module (csv_reader.py). For each
file below the chunks of read_chunks are compared with the csv module's own reading of
the same file, and with the rows written out by hand; count_rows (the manifest's row
count) with the csv module's count.
"""
from __future__ import annotations

import numpy as np
import pytest

from safety_ledger import csv_reader
from safety_ledger.csv_reader import FileRejected, HeaderError, read_chunks

COLUMNS = ("a", "b", "c")

# (name, file bytes, does Arrow read it, the data rows by hand: number -> cells)
CASES = [
    ("plain CRLF", b"a,b,c\r\n1,x,y\r\n2,,z\r\n", True,
     {1: ("1", "x", "y"), 2: ("2", None, "z")}),
    ("BOM, LF, no final newline", b"\xef\xbb\xbfa,b,c\n1,x,y\n2,x,", True,
     {1: ("1", "x", "y"), 2: ("2", "x", None)}),
    ("blank lines are not records", b"a,b,c\r\n\r\n1,x,y\r\n\r\n\r\n2,x,y\r\n", True,
     {1: ("1", "x", "y"), 2: ("2", "x", "y")}),
    ("CR line ends", b"a,b,c\r1,x,y\r2,x,y\r", True,
     {1: ("1", "x", "y"), 2: ("2", "x", "y")}),
    ("columns in another order", b"c,a,b\r\nz,1,x\r\n", True,
     {1: ("1", "x", "z")}),
    ("spaces and non-ASCII kept", "a,b,c\r\n 1 ,é,\u6e2c\r\n".encode(), True,
     {1: (" 1 ", "é", "\u6e2c")}),
    ("quoted comma and newline", b'a,b,c\r\n1,"x,1","line\r\nbreak"\r\n2,x,y\r\n', False,
     {1: ("1", "x,1", "line\r\nbreak"), 2: ("2", "x", "y")}),
    ("empty quoted cell", b'a,b,c\r\n1,"",y\r\n', False,
     {1: ("1", None, "y")}),
    ("a NUL byte is a character", b"a,b,c\r\n1,x\x00,y\r\n", False,
     {1: ("1", "x\x00", "y")}),
]


def _rows(chunks):
    rows, misshapen = {}, []
    for ch in chunks:
        assert list(ch.positions(ch.numbers)) == list(range(len(ch.numbers)))
        for number, cells in zip(ch.numbers, ch.cells(np.arange(len(ch.numbers)))):
            rows[int(number)] = tuple(cells[c] for c in COLUMNS)
        misshapen += [(r.number, r.shape_error) for r in ch.misshapen]
    return rows, misshapen


@pytest.mark.parametrize("name,data,by_arrow,expected", CASES, ids=[c[0] for c in CASES])
def test_both_readers_give_the_rows_written_by_hand(tmp_path, name, data, by_arrow, expected):
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    assert (csv_reader._read_plain(path, COLUMNS) is not None) == by_arrow
    read = _rows(read_chunks(path, COLUMNS))
    by_module = _rows(csv_reader._read_with_csv_module(path, COLUMNS, csv_reader.CHUNK_ROWS, csv_reader.CHUNK_BYTES))
    assert read == by_module == (expected, [])
    assert csv_reader.count_rows(path) == len(expected) == sum(1 for _ in csv_reader._records(path)) - 1


def test_a_misshapen_row_sends_the_file_to_the_csv_module(tmp_path):
    """Row 2 has four cells: quarantined as misshapen, the rows around it keep their numbers."""
    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b,c\r\n1,x,y\r\n2,x,y,extra\r\n3,x,y\r\n")
    assert csv_reader._read_plain(path, COLUMNS) is None
    rows, misshapen = _rows(read_chunks(path, COLUMNS))
    assert rows == {1: ("1", "x", "y"), 3: ("3", "x", "y")}
    assert misshapen == [(2, "4 cells where the header has 3")]


def test_bad_utf8_is_worded_by_the_csv_module(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b,c\r\n1,\xff,y\r\n")
    assert csv_reader._read_plain(path, COLUMNS) is None
    with pytest.raises(FileRejected, match=r"not valid UTF-8 \(byte 9\)") as e:
        list(read_chunks(path, COLUMNS))
    assert e.value.rule == "file.encoding"


def test_a_bad_header_is_refused_by_both_readers(tmp_path):
    for data in (b"a,b,d\r\n1,x,y\r\n", b'a,b,"d"\r\n1,x,y\r\n'):
        path = tmp_path / "f.csv"
        path.write_bytes(data)
        with pytest.raises(HeaderError, match="unknown column"):
            list(read_chunks(path, COLUMNS))


def test_chunks_end_at_the_same_rows_in_both_readers(tmp_path):
    """Chunks of 3 rows at most, or ending at the row that brings the cells to 12
    characters: rows of 6 characters (1 + 2 + 3) make chunks of 2, 2, 2, 1 rows."""
    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b,c\r\n" + b"".join(b"%d,xx,yyy\r\n" % i for i in range(1, 8)))
    fast = [list(map(int, ch.numbers)) for ch in read_chunks(path, COLUMNS, size=3, max_bytes=12)]
    slow = [list(map(int, ch.numbers)) for ch in csv_reader._read_with_csv_module(path, COLUMNS, 3, 12)]
    assert fast == slow == [[1, 2], [3, 4], [5, 6], [7]]


@pytest.mark.parametrize("tail", [b"\r\n", b"\n\r\n", b"\r", b"x\r\n", b""])
def test_lines_are_counted_across_the_counters_blocks(tail):
    """count_rows reads a file a mebibyte at a time: a line break or a blank line on the
    boundary of two blocks is counted as Python's own splitlines counts it."""
    block = 2**20
    for cut in (block - 2, block - 1, block, block + 1):
        data = b"h,i\r\n" + b"a" * (cut - 5) + tail + b"\n\nb,c\r\n"
        assert csv_reader._non_blank_lines(data) == sum(1 for line in data.splitlines() if line)


@pytest.mark.parametrize("data", [b"\xed\xa0\x80", b"\xc0\x80", b"\xe0\x80\x80", b"\xf4\x90\x80\x80", b"\xc2",
                                  b"\x80", b"a\xff", b"\xef\xbb\xbfa", b"\xf0\x9f\x98\x80", b"caf\xc3\xa9", b""])
def test_utf8_is_what_pythons_strict_decoder_accepts(data):
    """A surrogate, overlong forms, a code point past U+10FFFF, a cut or lone continuation
    byte are refused; a BOM, an emoji, an accent and nothing at all are accepted."""
    try:
        data.decode("utf-8")
        python = True
    except UnicodeDecodeError:
        python = False
    assert csv_reader._is_utf8(data) is python
