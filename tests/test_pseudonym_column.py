"""A column's pseudonyms (Pseudonymizer.column, what ingestion uses) are each
reference's own: HMAC-SHA256 under the key of "site_id US patient_ref", its first 24 hex
digits after "P-", whatever the column held before and whether the per-site memo is
kept or has just been emptied."""
from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa

from safety_ledger.pseudonym import Pseudonymizer

KEY = b"test-key"


def formula(site: str, ref: str | None) -> str | None:
    if ref is None:
        return None
    return "P-" + hmac.new(KEY, f"{site}\x1f{ref}".encode(), hashlib.sha256).hexdigest()[:24]


def test_columns_in_turn_with_nulls_repeats_and_sites():
    pseudo = Pseudonymizer(KEY)
    columns = [("SITE-A", ["MRN-1", None, "MRN-2", "MRN-1"]),
               ("SITE-A", ["MRN-2", "MRN-3", None, "MRN-1"]),   # two met before, one new
               ("SITE-B", ["MRN-1", "MRN-3"]),                  # the same references, another site
               ("SITE-A", [None, None]),
               ("SITE-A", [])]
    for site, refs in columns:
        got = pseudo.column(site, pa.array(refs, pa.string())).to_pylist()
        assert got == [formula(site, r) for r in refs]
    assert formula("SITE-A", "MRN-1") != formula("SITE-B", "MRN-1")


def test_the_memo_starts_again_when_full_and_never_holds_more():
    pseudo = Pseudonymizer(KEY)
    pseudo.CACHE_SIZE = 3
    held = []
    for site, refs in [("SITE-A", ["a", "b"]), ("SITE-B", ["a", "c"]), ("SITE-A", ["b", "d", "a"]),
                       ("SITE-A", ["e", "f"]), ("SITE-A", ["g"]), ("SITE-A", ["h", "i", "j", "k"]), ("SITE-B", ["c"])]:
        assert pseudo.column(site, pa.array(refs)).to_pylist() == [formula(site, r) for r in refs]
        held.append({s: sorted(refs.to_pylist()) for s, (refs, _) in pseudo._made.items()})
    # 2 held; 2 + 2 > 3: start again with SITE-B's two; SITE-A's memo is gone, so its three are
    # new: 2 + 3 > 3, start again with them; 3 + 2 > 3: again; 2 + 1 fit; four new are more than
    # the memo holds: nothing kept; then "c" alone
    assert held == [{"SITE-A": ["a", "b"]}, {"SITE-B": ["a", "c"]}, {"SITE-A": ["a", "b", "d"]},
                    {"SITE-A": ["e", "f"]}, {"SITE-A": ["e", "f", "g"]}, {}, {"SITE-B": ["c"]}]
