"""CSV downloads are safe from formula injection (OWASP, "CSV Injection"): a text cell that
starts with = + - @ TAB or CR is written with a single quote in front, so a spreadsheet
shows it as text instead of evaluating it.  Every expected output is written by hand."""
from __future__ import annotations

import pandas as pd
import pytest

from dashboard.data import csv_bytes, csv_safe_cell


@pytest.mark.parametrize("cell,expected", [
    ("=1+2", "'=1+2"),
    ("=HYPERLINK(\"http://evil.example\",\"x\")", "'=HYPERLINK(\"http://evil.example\",\"x\")"),
    ("+SUM(A1:A9)", "'+SUM(A1:A9)"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("'=already quoted", "'=already quoted"),   # starts with a quote: left as it is
    ("a=b", "a=b"),                             # only the first character matters
    (" =1", " =1"),                             # a leading space is not in the list
    ("SITE-A", "SITE-A"),
    ("—", "—"),
    ("", ""),
])
def test_cells(cell, expected):
    assert csv_safe_cell(cell) == expected


@pytest.mark.parametrize("value", [-3, -0.5, 7, None, True])
def test_non_text_values_are_left_alone(value):
    assert csv_safe_cell(value) is value


def test_whole_table_by_hand():
    df = pd.DataFrame({
        "=Site": ["=cmd|' /C calc'!A0", "SITE-A", "x,y"],
        "Reaction rate": ["-12.0%", "15.0%", "+1"],
        "n": [-1, 2, 3],
    })
    expected = (
        "'=Site,Reaction rate,n\r\n"
        "'=cmd|' /C calc'!A0,'-12.0%,-1\r\n"      # no comma, quote char or newline: unquoted
        "SITE-A,15.0%,2\r\n"
        "\"x,y\",'+1,3\r\n"
    )
    assert csv_bytes(df) == expected.encode("utf-8")


def test_a_cell_with_a_quote_and_a_newline_stays_one_cell():
    df = pd.DataFrame({"Reason": ['@bad "quoted"\nline']})
    assert csv_bytes(df) == b'Reason\r\n"\'@bad ""quoted""\nline"\r\n'
