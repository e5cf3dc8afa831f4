"""GX judges the distinct values of a frame, and each row gets exactly the rules its own
values break (safety_ledger/validation.py). Hand-worked: six infusion rows, four of them
broken, some sharing a bad value; the verdicts must be the rows', and GX must have seen
only one row per distinct value of each column group."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from safety_ledger import contract, validation
from safety_ledger.home import Home

GOOD = dict(infusion_ref="INF-1", patient_ref="P-1", cycle="2", started_at="2025-03-22T09:40:00+08:00",
            dose_mg="375", planned_duration_min="60", protocol="standard", combination="paclitaxel",
            premedication="dexamethasone", completed="true", recorded_at="2025-03-22T18:00:00+08:00")
ROWS = [  # source_row 1..6
    GOOD,
    dict(GOOD, infusion_ref="INF-2", protocol="fast"),
    dict(GOOD, infusion_ref="INF-3", protocol="fast", cycle="0"),
    # 09:40 at +08:00 is 01:40 UTC; recorded 2025-03-22T01:00:00Z is earlier: started after recorded
    dict(GOOD, infusion_ref="INF-4", recorded_at="2025-03-22T01:00:00Z"),
    dict(GOOD, infusion_ref="INF-5", patient_ref="P-2"),
    dict(GOOD, infusion_ref="INF-6", patient_ref=None),
]


def frame():
    spec = contract.INFUSIONS
    columns = {c: pa.array([r[c] for r in ROWS], pa.string()) for c in spec.column_names}
    return validation.frame_for(spec, list(range(1, len(ROWS) + 1)), columns).frame


def test_each_row_gets_the_rules_its_values_break(tmp_path):
    broken = validation.validate(Home(tmp_path / "home").ensure(), contract.INFUSIONS, frame(), "distinct-test")
    assert {row: [v.rule for v in vs] for row, vs in broken.items()} == {
        2: ["infusions.protocol.vocabulary"],
        3: ["infusions.cycle.range", "infusions.protocol.vocabulary"],   # in the suite's order
        4: ["infusions.started_at.not_after_recorded_at"],
        6: ["infusions.patient_ref.required"],
    }


def test_gx_sees_one_row_per_distinct_value():
    distinct = validation.distinct_values(frame(), validation.column_groups("infusions"))
    # Every group has at most two distinct values here (protocol: standard, fast; cycle: 2, 0;
    # patient_ref: present, absent; started_at not after recorded_at: true, false; every other
    # column: one), so GX validates two rows, not six.
    assert len(distinct.values) == 2
    assert sorted(distinct.values["protocol"]) == ["fast", "standard"]
    assert sorted(distinct.values["cycle__value"]) == [0.0, 2.0]
    # patient_ref only has to be present: one row with it (the first row's) and one without,
    # in the order they first appear; a group with one value repeats it to the common length.
    assert list(distinct.values["patient_ref"]) == ["P-1", None]
    assert list(distinct.values["infusion_ref"]) == ["INF-1", "INF-1"]
    # Each frame row's code points at the distinct row that carries its value.
    at = {code: i for i, code in enumerate(distinct.value_codes["protocol"])}
    assert [distinct.values["protocol"][at[c]] for c in distinct.row_codes["protocol"]] == \
        [r["protocol"] for r in ROWS]


def test_first_rows_of_codes_in_order_of_appearance():
    """The row that first holds each code, by hand: codes 0, 1, 2, 3 first appear at rows
    0, 2, 4 and 6; a repeated code is not a first row; no rows, no codes."""
    assert list(validation._first_rows(np.array([0, 0, 1, 0, 2, 1, 3, 3]))) == [0, 2, 4, 6]
    assert list(validation._first_rows(np.array([0]))) == [0]
    assert list(validation._first_rows(np.array([], dtype=np.int64))) == []
    # two values at most (a presence, a true/false): the first row and the first 1
    assert list(validation._first_rows(np.array([0, 0, 1, 0, 1]))) == [0, 2]
    assert list(validation._first_rows(np.array([0, 0, 0]))) == [0]


def test_true_false_codes_are_numbered_as_pandas_numbers_them():
    """A presence or a true/false column is coded without hashing: 0 for the first row's
    value, 1 for the other, as pd.factorize would number them."""
    import pandas as pd
    for flags in ([True, False, True], [False, False, True], [True, True], [False], []):
        flags = np.array(flags, dtype=bool)
        assert list(validation._two_codes(flags)) == list(pd.factorize(flags)[0]), flags


def test_text_of_a_frame_made_of_parts_is_taken_from_each_part():
    """A wave's frame joins its parts' frames, so a text column is several Arrow chunks:
    the distinct rows are taken from the chunk that holds each (GX reads None for NA)."""
    import pandas as pd
    parts = [pd.DataFrame({"text": pd.array(chunk, dtype="string[pyarrow]")})
             for chunk in (["a", None], ["b"], ["a", "c", None])]
    frame = pd.concat(parts, ignore_index=True)
    distinct = validation.distinct_values(frame, (validation.Group(("text",), False),))
    assert list(distinct.values["text"]) == ["a", None, "b", "c"]
    assert list(distinct.row_codes["text"]) == [0, 1, 2, 0, 3, 1]
    # a part with no value of its own is passed over; a shorter group repeats its values
    frame = pd.concat([pd.DataFrame({"text": pd.array(chunk, dtype="string[pyarrow]"),
                                     "flag": [True] * len(chunk)}) for chunk in (["a"], ["a"], ["b", "c"])],
                      ignore_index=True)
    groups = (validation.Group(("text",), False), validation.Group(("flag",), False))
    distinct = validation.distinct_values(frame, groups)
    assert list(distinct.values["text"]) == ["a", "b", "c"]
    assert list(distinct.values["flag"]) == [True, True, True]


def test_each_rows_value_is_found_whatever_order_its_codes_come_in():
    """Every column dtype the suites read, with NA first, in the middle or absent: each
    frame row's code must point at a distinct row with its own value (NA included).
    One column's codes are pandas' own (no second factorize): where they do not come in
    order of first appearance, distinct_values numbers them again."""
    import pandas as pd
    frame = pd.DataFrame({
        "text": pd.array([None, "b", None, "a", "b"], dtype="string[pyarrow]"),
        "flag": pd.array([None, True, None, False, True], dtype="boolean"),
        "value": [np.nan, 2.0, np.nan, 1.0, 2.0],
        "plain": [True, True, False, True, False],
    })
    groups = tuple(validation.Group((c,), False) for c in frame.columns)
    distinct = validation.distinct_values(frame, groups)
    for c in frame.columns:
        at = {code: i for i, code in enumerate(distinct.value_codes[c])}
        got = [distinct.values[c][at[code]] for code in distinct.row_codes[c]]
        assert [None if pd.isna(v) else v for v in got] == [None if pd.isna(v) else v for v in frame[c]]
    assert len(distinct.values) == 3   # text, flag, value: three values each (plain: two)


def test_codes_out_of_order_are_noticed():
    """_first_rows is only right for codes 0, 1, ... in order of first appearance: any
    other numbering (a later code first, a gap, a -1 for NA) must be caught."""
    for codes, ordered in [([0, 0, 1, 0, 2], True), ([], True), ([1, 0], False), ([0, 2, 1], False),
                           ([0, 2], False), ([0, -1, 1], False), ([-1, 0], False)]:
        codes = np.array(codes, dtype=np.int64)
        assert validation._numbered_by_appearance(codes, validation._first_rows(codes)) is ordered, codes


def test_distinct_values_numbers_again_codes_that_come_out_of_order(monkeypatch):
    """Where a column's codes do not come in order of first appearance (a pandas that
    numbered them otherwise: here, in reverse), distinct_values numbers them again and
    each row still points at its own value."""
    import pandas as pd
    frame = pd.DataFrame({"text": pd.array(["b", None, "a", "b", "c"], dtype="string[pyarrow]")})
    group = validation.Group(("text",), False)
    real = validation._codes
    monkeypatch.setattr(validation, "_codes", lambda f, g: 3 - real(f, g))   # b, NA, a, c -> 3, 2, 1, 0
    distinct = validation.distinct_values(frame, (group,))
    at = {code: i for i, code in enumerate(distinct.value_codes["text"])}
    assert [distinct.values["text"][at[c]] for c in distinct.row_codes["text"]] == ["b", None, "a", "b", "c"]
    assert list(distinct.values["text"]) == ["b", None, "a", "c"]
