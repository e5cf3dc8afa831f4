"""The synthetic generator: determinism, contract conformance, the kinds of rows it says
it wrote, and the clinical shape. The row checker below is written from the contract
(safety_ledger/contract.py) independently of the generator and of ingestion."""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safety_ledger import contract, generator, submission_writer
from safety_ledger.submission_writer import Chunks, Patched, csv_bytes, string_array, table_csv_bytes

# --------------------------------------------------------------------------------------
# An independent one-row checker: rule names <file stem>.<column>.<check>
# --------------------------------------------------------------------------------------
_INT = re.compile(r"^[+-]?[0-9]+$")
_FLOAT = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_TS = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})$")
_TOKEN = re.compile(r"^[a-z0-9_]+$")


def _parse(kind: str, text: str):
    """Typed value, or raise ValueError when the cell does not have the contract's type."""
    if kind == "int":
        if not _INT.match(text):
            raise ValueError(text)
        return int(text)
    if kind == "float":
        if not _FLOAT.match(text) or not math.isfinite(float(text)):
            raise ValueError(text)
        return float(text)
    if kind == "date":
        if not _DATE.match(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    if kind == "timestamp":
        if not _TS.match(text):
            raise ValueError(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    if kind == "list":
        tokens = text.split(";")
        if not all(_TOKEN.match(t) for t in tokens):
            raise ValueError(text)
        return tokens
    return text


def broken_rules(spec: contract.FileSpec, cells: dict[str, str]) -> set[str]:
    stem = spec.file.removesuffix(".csv")
    broken: set[str] = set()
    value: dict[str, object] = {}
    for c in spec.columns:
        rule = f"{stem}.{c.name}"
        text = cells[c.name]
        if text == "":
            if c.kind == "list":
                value[c.name] = []
                if c.min_items:
                    broken.add(f"{rule}.min_items")
            elif not c.nullable:
                broken.add(f"{rule}.required")
            continue
        try:
            v = _parse(c.kind, text)
        except ValueError:
            broken.add(f"{rule}.type")
            continue
        if c.kind in ("enum", "bool") and v not in c.vocabulary:
            broken.add(f"{rule}.vocabulary")
            continue
        if c.kind == "list" and not set(v) <= set(c.vocabulary):
            broken.add(f"{rule}.vocabulary")
            continue
        if c.max_length is not None and not 1 <= len(v) <= c.max_length:
            broken.add(f"{rule}.length")
        if c.min is not None and (v <= c.min if c.strict_min else v < c.min):
            broken.add(f"{rule}.range")
            continue
        if c.max is not None and v > c.max:
            broken.add(f"{rule}.range")
            continue
        value[c.name] = v
    for a, b in spec.not_after:
        if a in value and b in value:
            va, vb = value[a], value[b]
            if isinstance(va, datetime) and isinstance(vb, datetime):
                late = va > vb
            else:  # a date against a timestamp: the calendar date at the timestamp's own offset
                da = va.date() if isinstance(va, datetime) else va
                db = vb.date() if isinstance(vb, datetime) else vb
                late = da > db
            if late:
                broken.add(f"{stem}.{a}.not_after_{b}")
    if spec.fatal_iff_grade5 and "grade" in value and "outcome" in value:
        if (value["grade"] == 5) != (value["outcome"] == "fatal"):
            broken.add(f"{stem}.outcome.fatal_iff_grade5")
    return broken


# --------------------------------------------------------------------------------------
# Reading what the generator wrote
# --------------------------------------------------------------------------------------
def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    text = path.read_bytes().decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    return header, [dict(zip(header, r)) for r in reader]


def submissions(out: Path) -> list[tuple[str, str, dict]]:
    """(site_id, submission_id, manifest) in site order, then export order."""
    found = []
    for site in sorted(p for p in out.iterdir() if p.is_dir()):
        subs = [(json.loads((d / "manifest.json").read_text()), d.name) for d in site.iterdir() if d.is_dir()]
        for manifest, name in sorted(subs, key=lambda x: _parse("timestamp", x[0]["exported_at"])):
            found.append((site.name, name, manifest))
    return found


def all_rows(out: Path):
    """Every data row: dicts with site, sub (index within the site), submission_id, file, row, cells."""
    rows = []
    index: Counter = Counter()
    for site, sub_id, manifest in submissions(out):
        k = index[site]
        index[site] += 1
        for name in manifest["files"]:
            _, data = read_csv(out / site / sub_id / name)
            for n, cells in enumerate(data, start=1):
                rows.append(dict(site=site, sub=k, submission_id=sub_id, file=name, row=n, cells=cells))
    return rows


def tree_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


KEY = {"patients.csv": "patient_ref", "infusions.csv": "infusion_ref", "reactions.csv": "reaction_ref",
       "iraes.csv": "irae_ref"}


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("small") / "landing"
    return out, generator.generate(out, progress=None)


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """High data-quality rates, so that every feature and most rules occur."""
    out = tmp_path_factory.mktemp("messy") / "landing"
    summary = generator.generate(out, sites=5, patients=1500, seed=3, submissions_per_site=4,
                                 duplicate_rate=0.05, correction_rate=0.05, retraction_rate=0.03,
                                 late_parent_rate=0.25, invalid_rate=0.15, progress=None)
    return out, summary, all_rows(out)


@pytest.fixture(scope="module")
def shape(tmp_path_factory):
    """A few thousand infusions with the default rates."""
    out = tmp_path_factory.mktemp("shape") / "landing"
    return out, generator.generate(out, sites=6, patients=700, seed=11, progress=None)


# --------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------
def test_same_arguments_give_identical_bytes(tmp_path, small):
    out, _ = small
    again = tmp_path / "again"
    generator.generate(again, progress=None)
    assert tree_bytes(again) == tree_bytes(out)


def test_another_seed_gives_other_data(tmp_path, small):
    out, _ = small
    other = tmp_path / "other"
    generator.generate(other, seed=8, progress=None)
    assert tree_bytes(other) != tree_bytes(out)


def tree_digest(out: Path) -> str:
    h = hashlib.sha256()
    for name, data in tree_bytes(out).items():
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


# The bytes of `generate(out)` with its defaults. They change only when the generator is
# changed on purpose (a new clinical parameter, a new random-stream layout), and then this
# digest is updated in the same commit, saying why. Last change: sites simulated one at a
# time, each from its own stream (SeedSequence(seed).spawn), for generation at scale.
SMALL_RUN_DIGEST = "3e02a9aeb6a1e427578db6c17ab45ea6f4804173a0f9f96d6f03103a96a50b8b"


def test_small_run_writes_the_pinned_bytes(small):
    out, _ = small
    assert tree_digest(out) == SMALL_RUN_DIGEST


def test_worker_processes_do_not_change_the_bytes(tmp_path, small):
    out, _ = small
    generator.generate(tmp_path / "two", progress=None, workers=2)
    assert tree_bytes(tmp_path / "two") == tree_bytes(out)


def test_chunk_size_does_not_change_the_bytes(tmp_path, monkeypatch):
    """Files formatted a few rows at a time (patched cells and extra rows falling on chunk
    edges) are the same bytes as files formatted in one piece."""
    kwargs = dict(sites=2, patients=150, seed=4, invalid_rate=0.2, correction_rate=0.1, duplicate_rate=0.1,
                  retraction_rate=0.05, progress=None)
    generator.generate(tmp_path / "whole", **kwargs)
    monkeypatch.setattr(generator, "WRITE_CHUNK_ROWS", 7)
    generator.generate(tmp_path / "pieces", **kwargs)
    assert tree_bytes(tmp_path / "pieces") == tree_bytes(tmp_path / "whole")


def test_refuses_to_write_over_a_submission(small):
    out, _ = small
    with pytest.raises(FileExistsError):
        generator.generate(out, progress=None)


# --------------------------------------------------------------------------------------
# Contract conformance
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["small", "messy"])
def test_manifests_match_their_files(which, request):
    out, summary = request.getfixturevalue(which)[:2]
    subs = submissions(out)
    assert len(subs) == len(summary.submissions)
    assert Counter(site for site, _, _ in subs) == {site: summary.submissions_per_site for site in summary.sites}
    by_site: dict[str, list] = defaultdict(list)
    for site, sub_id, manifest in subs:
        folder = out / site / sub_id
        assert contract.ID_PATTERN_SITE.match(site) and contract.ID_PATTERN_SUBMISSION.match(sub_id)
        assert re.fullmatch(r"SITE-\d{3}", site) and re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{3}", sub_id)
        assert manifest["schema_version"] == contract.SCHEMA_VERSION
        assert (manifest["site_id"], manifest["submission_id"]) == (site, sub_id)
        assert sub_id.startswith(manifest["exported_at"][:10])
        assert manifest["exported_at"].endswith("+08:00")
        present = {p.name for p in folder.iterdir() if p.suffix == ".csv"}
        assert present == set(manifest["files"])
        for name, listed in manifest["files"].items():
            data = (folder / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == listed["sha256"]
            header, rows = read_csv(folder / name)
            assert len(rows) == listed["rows"]
            assert tuple(header) == contract.FILES[name].column_names
        by_site[site].append((manifest["exported_at"], sub_id))
    for site, exports in by_site.items():
        times = [_parse("timestamp", e) for e, _ in exports]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert [s for _, s in exports] == sorted(s for _, s in exports)
    assert sum(sum(m["files"][f]["rows"] for f in m["files"]) for _, _, m in subs) == summary.total_rows


def test_summary_per_submission_matches_manifests(messy):
    out, summary, _ = messy
    for s in summary.submissions:
        manifest = json.loads((out / s.site_id / s.submission_id / "manifest.json").read_text())
        assert {f: v["rows"] for f, v in manifest["files"].items()} == s.rows
        assert s.valid + s.corrections + s.duplicates + s.invalid + s.retractions == s.total_rows
        assert manifest["exported_at"] == s.exported_at


def test_row_kinds_add_up(messy):
    _, summary, rows = messy
    per_file = Counter(r["file"] for r in rows)
    assert dict(per_file) == {f: n for f, n in summary.rows.items() if n}
    invalid_by_file = Counter(r.file for r in summary.invalid_rows)
    for f in KEY:
        assert summary.rows[f] == (summary.valid[f] + summary.corrections[f] + summary.duplicates[f]
                                   + invalid_by_file[f])
    assert summary.rows["retractions.csv"] == sum(summary.retractions.values())
    assert summary.total_rows == (summary.expected_events + summary.expected_duplicates
                                  + summary.expected_quarantined)


@pytest.mark.parametrize("which", ["small", "messy", "shape"])
def test_valid_rows_pass_and_invalid_rows_break_exactly_their_rule(which, request):
    fixture = request.getfixturevalue(which)
    out, summary = fixture[:2]
    rows = fixture[2] if len(fixture) > 2 else all_rows(out)
    found = []
    for r in rows:
        broken = broken_rules(contract.FILES[r["file"]], r["cells"])
        assert len(broken) <= 1, (r, broken)
        if broken:
            found.append((r["site"], r["submission_id"], r["file"], r["row"], broken.pop()))
    expected = [(x.site_id, x.submission_id, x.file, x.row, x.rule) for x in summary.invalid_rows]
    assert sorted(found) == sorted(expected)
    assert Counter(rule for *_, rule in found) == Counter({k: v for k, v in summary.invalid.items() if v})
    assert len(found) == summary.expected_quarantined


def test_every_invalid_rule_occurs_when_invalid_rows_are_common(messy):
    _, summary, _ = messy
    assert set(summary.invalid) == {r for rules in generator.INVALID_RULES.values() for r in rules}
    missing = [rule for rule, n in summary.invalid.items() if n == 0]
    assert len(missing) <= 3, missing
    # the kinds the brief names
    for rule in ("infusions.cycle.range", "reactions.term.vocabulary", "infusions.started_at.type",
                 "reactions.outcome.fatal_iff_grade5", "patients.first_dose_date.not_after_recorded_at"):
        assert summary.invalid[rule] > 0, rule


def test_patient_refs_look_like_medical_record_numbers(small):
    out, _ = small
    for r in all_rows(out):
        if "patient_ref" in r["cells"]:
            m = re.fullmatch(r"MRN-(\d{3})-(\d{7})", r["cells"]["patient_ref"])
            assert m and r["site"] == f"SITE-{m.group(1)}"


# --------------------------------------------------------------------------------------
# Data-quality features, recomputed from the files
# --------------------------------------------------------------------------------------
def versions(rows):
    """(site, file, key) -> the rows of that record, in submission order."""
    out: dict[tuple, list] = defaultdict(list)
    for r in rows:
        if r["file"] in KEY:
            out[(r["site"], r["file"], r["cells"][KEY[r["file"]]])].append(r)
    return out


def test_duplicates_and_corrections_are_what_the_summary_says(messy):
    _, summary, rows = messy
    dup, corr = Counter(), Counter()
    for (site, f, key), vs in versions(rows).items():
        assert len(vs) <= 2
        assert len({v["sub"] for v in vs}) == len(vs), "one version per submission"
        if len(vs) == 2:
            first, second = vs
            assert second["sub"] > first["sub"]
            if second["cells"] == first["cells"]:
                dup[f] += 1
            else:
                corr[f] += 1
                t1 = _parse("timestamp", first["cells"]["recorded_at"])
                t2 = _parse("timestamp", second["cells"]["recorded_at"])
                assert t2 > t1
                changed = {c for c in first["cells"] if first["cells"][c] != second["cells"][c]} - {"recorded_at"}
                assert len(changed) == 1, changed
    assert dict(dup) == {f: n for f, n in summary.duplicates.items() if n}
    assert dict(corr) == {f: n for f, n in summary.corrections.items() if n}
    assert sum(dup.values()) > 0 and sum(corr.values()) > 0


def test_late_parents_and_every_reaction_has_an_infusion(messy):
    _, summary, rows = messy
    first_sub: dict[tuple, int] = {}
    for r in rows:
        if r["file"] in KEY:
            first_sub.setdefault((r["site"], r["file"], r["cells"][KEY[r["file"]]]), r["sub"])
    late = 0
    for (site, f, key), sub in first_sub.items():
        if f == "reactions.csv":
            ref = next(r["cells"]["infusion_ref"] for r in rows
                       if r["site"] == site and r["file"] == f and r["cells"]["reaction_ref"] == key)
            assert (site, "infusions.csv", ref) in first_sub, f"{site} {key} refers to a missing {ref}"
            late += first_sub[(site, "infusions.csv", ref)] > sub
    assert late == summary.late_parents > 0


def test_retractions_refer_to_earlier_records(messy):
    _, summary, rows = messy
    first_sub: dict[tuple, int] = {}
    for r in rows:
        if r["file"] in KEY:
            first_sub.setdefault((r["site"], r["file"], r["cells"][KEY[r["file"]]]), r["sub"])
    file_of = {"patient": "patients.csv", "infusion": "infusions.csv", "reaction": "reactions.csv",
               "irae": "iraes.csv"}
    counts = Counter()
    for r in rows:
        if r["file"] == "retractions.csv":
            c = r["cells"]
            key = (r["site"], file_of[c["record_type"]], c["ref"])
            assert key in first_sub and first_sub[key] < r["sub"]
            assert 1 <= len(c["reason"]) <= 500
            counts[c["record_type"]] += 1
    assert dict(counts) == {k: v for k, v in summary.retractions.items() if v}
    assert sum(counts.values()) > 0


def test_no_later_submission_means_no_later_features(tmp_path):
    s = generator.generate(tmp_path / "one", submissions_per_site=1, progress=None)
    assert len(s.submissions) == 4
    assert sum(s.duplicates.values()) == sum(s.corrections.values()) == sum(s.retractions.values()) == 0
    assert s.late_parents == 0


def test_zero_rates_write_only_valid_rows(tmp_path):
    s = generator.generate(tmp_path / "clean", duplicate_rate=0, correction_rate=0, retraction_rate=0,
                           late_parent_rate=0, invalid_rate=0, progress=None)
    assert s.total_rows == sum(s.valid.values()) and not s.invalid_rows
    assert all(n == 0 for n in s.orphans.values())


def test_rates_are_shares_of_the_records(messy):
    """round(rate x records) of every table of every site (sites are generated one at a time)."""
    _, s, rows = messy
    records, invalid, corrected, resent = Counter(), Counter(), Counter(), Counter()
    for (site, f, key), vs in versions(rows).items():
        records[(site, f)] += 1
        if len(vs) == 2:
            (resent if vs[0]["cells"] == vs[1]["cells"] else corrected)[(site, f)] += 1
    for x in s.invalid_rows:
        invalid[(x.site_id, x.file)] += 1
    for site in s.sites:
        for f in KEY:
            n = records[(site, f)]
            assert n > 0
            assert invalid[(site, f)] == round(0.15 * n), (site, f)
            assert corrected[(site, f)] == round(0.05 * n), (site, f)
            assert resent[(site, f)] == round(0.05 * n), (site, f)
    for f in KEY:
        assert s.corrections[f] == sum(corrected[(site, f)] for site in s.sites)
        assert s.duplicates[f] == sum(resent[(site, f)] for site in s.sites)
    assert s.late_parents == sum(round(0.25 * records[(site, "reactions.csv")]) for site in s.sites)


# --------------------------------------------------------------------------------------
# Clinical shape, from the current valid records of the files
# --------------------------------------------------------------------------------------
def current(rows):
    """Latest valid version of each record, minus retracted records."""
    latest: dict[tuple, dict] = {}
    retracted = set()
    for r in rows:
        if broken_rules(contract.FILES[r["file"]], r["cells"]):
            continue
        c = r["cells"]
        if r["file"] == "retractions.csv":
            retracted.add((r["site"], c["record_type"], c["ref"]))
            continue
        key = (r["site"], r["file"], c[KEY[r["file"]]])
        if key not in latest or c["recorded_at"] >= latest[key]["recorded_at"]:
            latest[key] = c
    kinds = {"patients.csv": "patient", "infusions.csv": "infusion", "reactions.csv": "reaction",
             "iraes.csv": "irae"}
    out: dict[str, list] = defaultdict(list)
    for (site, f, key), c in latest.items():
        if (site, kinds[f], key) not in retracted:
            out[f].append(dict(c, site=site))
    return out


def rate(pairs) -> float:
    pairs = list(pairs)
    return sum(pairs) / len(pairs)


def test_reaction_shape(shape):
    out, summary = shape
    cur = current(all_rows(out))
    reactions = defaultdict(list)
    for r in cur["reactions.csv"]:
        reactions[(r["site"], r["infusion_ref"])].append(r)
    infusions = cur["infusions.csv"]
    assert len(infusions) > 3000
    reacted = {(i["site"], i["infusion_ref"]): (i["site"], i["infusion_ref"]) in reactions for i in infusions}
    by_cycle = defaultdict(list)
    for i in infusions:
        by_cycle[int(i["cycle"])].append(reacted[(i["site"], i["infusion_ref"])])
    peak = rate(x for c in (2, 3) for x in by_cycle[c])
    first = rate(by_cycle[1])
    later = rate(x for c in by_cycle if c >= 6 for x in by_cycle[c])
    assert peak > first and peak > later, (first, peak, later)

    # premedication, among infusions given before the patient's first reaction (after a
    # reaction every infusion is premedicated: comparing all infusions mixes in that risk)
    by_patient = defaultdict(list)
    for i in infusions:
        by_patient[(i["site"], i["patient_ref"])].append(i)
    naive_premed, naive_none = [], []
    for infs in by_patient.values():
        for i in sorted(infs, key=lambda x: _parse("timestamp", x["started_at"])):
            r = reacted[(i["site"], i["infusion_ref"])]
            (naive_premed if i["premedication"] else naive_none).append(r)
            if r:
                break
    assert rate(naive_premed) < rate(naive_none)

    # grades mostly 1-2; onset mostly within 30 minutes
    grades = Counter(int(r["grade"]) for r in cur["reactions.csv"])
    assert grades[1] + grades[2] > 0.6 * sum(grades.values())
    assert grades[3] > 0 and grades[3] > grades[4] >= grades[5]
    onsets = [int(r["onset_min"]) for r in cur["reactions.csv"]]
    assert sum(o <= 30 for o in onsets) > 0.6 * len(onsets)


def test_rechallenge_after_a_reaction(shape):
    _, summary = shape
    c = summary.clinical
    assert c["rechallenges"] > 0.5 * c["patients_with_reaction"]
    assert c["rechallenge_tolerated"] > c["rechallenge_breakthrough"] > c["rechallenge_failed"] > 0
    assert c["rechallenge_tolerated"] + c["rechallenge_breakthrough"] > 0.75 * c["rechallenges"]


def test_rechallenge_infusions_are_premedicated_and_slower(shape):
    out, _ = shape
    cur = current(all_rows(out))
    reacted = {(r["site"], r["infusion_ref"]) for r in cur["reactions.csv"]}
    by_patient = defaultdict(list)
    for i in cur["infusions.csv"]:
        by_patient[(i["site"], i["patient_ref"])].append(i)
    rechallenges = []
    for infs in by_patient.values():
        infs.sort(key=lambda x: _parse("timestamp", x["started_at"]))
        hits = [n for n, i in enumerate(infs) if (i["site"], i["infusion_ref"]) in reacted]
        if hits and hits[0] + 1 < len(infs):
            rechallenges.append(infs[hits[0] + 1])
    assert len(rechallenges) > 20
    assert rate(bool(i["premedication"]) for i in rechallenges) > 0.9
    assert rate(i["protocol"] != "standard" for i in rechallenges) > 0.9


def test_tumour_mix_regimens_and_iraes(shape):
    out, _ = shape
    cur = current(all_rows(out))
    tumors = Counter(p["tumor_type"] for p in cur["patients.csv"])
    assert tumors.most_common(2)[0][0] in ("cervical", "gastric_gej")
    assert {"cervical", "gastric_gej", "hcc", "nsclc"} <= set(tumors)
    tumor_of = {(p["site"], p["patient_ref"]): p["tumor_type"] for p in cur["patients.csv"]}
    combos = defaultdict(Counter)
    for i in cur["infusions.csv"]:
        t = tumor_of.get((i["site"], i["patient_ref"]))
        combos[t][i["combination"]] += 1
    assert any("bevacizumab" in c for c in combos["cervical"])
    assert "capecitabine;oxaliplatin" in combos["gastric_gej"] and "s1;oxaliplatin" in combos["gastric_gej"]
    assert "lenvatinib" in combos["hcc"]
    assert {"pemetrexed;carboplatin", "anlotinib"} <= set(combos["nsclc"])
    assert "" in combos["npc"]  # monotherapy
    # q3w mostly, some q2w
    gaps = Counter()
    by_patient = defaultdict(list)
    for i in cur["infusions.csv"]:
        by_patient[(i["site"], i["patient_ref"])].append(_parse("timestamp", i["started_at"]))
    for times in by_patient.values():
        times.sort()
        for a, b in zip(times, times[1:]):
            gaps[(b - a).days] += 1
    assert sum(n for d, n in gaps.items() if 21 <= d <= 24) > sum(n for d, n in gaps.items() if 14 <= d <= 17) > 0
    assert max(len(t) for t in by_patient.values()) >= 15
    # irAEs: common categories lead, onset after the first dose
    cats = Counter(e["category"] for e in cur["iraes.csv"])
    assert set(c for c, _ in cats.most_common(5)) <= {"hepatitis", "pneumonitis", "dermatitis", "thyroiditis",
                                                      "colitis", "other"}
    first_dose = {(p["site"], p["patient_ref"]): p["first_dose_date"] for p in cur["patients.csv"]}
    for e in cur["iraes.csv"]:
        fd = first_dose.get((e["site"], e["patient_ref"]))
        if fd:
            assert e["onset_date"] > fd


# --------------------------------------------------------------------------------------
# The writer: rows as dicts (csv module, cell by cell) and columns as Arrow arrays
# (vectorized) write the same bytes
# --------------------------------------------------------------------------------------
TZ8 = timezone(timedelta(hours=8))
AWKWARD_TEXT = ["x", "a,b", 'say "hi"', "", None, "line\nfeed", "caf\u00e9", "cr\rhere", "nul\0byte", " padded ",
                '"', ",", "\U0001d11e", "\u00ff\u00fe"]


def awkward_table():
    """Every cell type the writer formats, with the awkward values of each."""
    n = len(AWKWARD_TEXT)
    cols = {
        "text": AWKWARD_TEXT,
        "int": [0, -9223372036854775808, None, 9, 10_000, -1, 9223372036854775807, 42, 7, 123456789, -10_000, 1, 2, 3],
        "small": [0, 1, None, 9999, -5, 10, 99, 100, 1000, 3, 4, 5, 6, 7],
        "flag": [True, False, None] * 4 + [True, False],
        "day": [date(1, 1, 1), date(9999, 12, 31), None, date(1970, 1, 1), date(2024, 2, 29)] + [date(2025, 3, 22)] * 9,
        "at": [datetime(2025, 3, 22, 9, 40, tzinfo=TZ8), None, datetime(1, 1, 2, 0, 0, 1, tzinfo=TZ8),
               datetime(9999, 12, 30, 23, 59, 59, tzinfo=TZ8)] + [datetime(2024, 12, 31, 23, 59, 59, tzinfo=TZ8)] * 10,
        "kg": [Decimal("56.0"), Decimal("-0.5"), None, Decimal("0.0"), Decimal("250.0"), Decimal("-12.3")] + [Decimal("61.4")] * 8,
        "tokens": [["rash", "pruritus"], [], None, ["a,b"], ["one"]] * 2 + [["x"]] * 4,
        "enum": ["standard", "extended", None, "with,comma"] * 3 + ["standard", "stepwise"],
        "real": [1.5, 1e16, None, 0.1 + 0.2, -0.0, 3.0] * 2 + [2.5, 7.0],
    }
    assert all(len(v) == n for v in cols.values())
    table = pa.table({
        "text": pa.array(cols["text"], pa.string()), "int": pa.array(cols["int"], pa.int64()),
        "small": pa.array(cols["small"], pa.int16()), "flag": pa.array(cols["flag"], pa.bool_()),
        "day": pa.array(cols["day"], pa.date32()), "at": pa.array(cols["at"], pa.timestamp("s", tz="+08:00")),
        "kg": pa.array(cols["kg"], pa.decimal128(18, 1)), "tokens": pa.array(cols["tokens"], pa.list_(pa.string())),
        "enum": pa.array(cols["enum"], pa.string()).dictionary_encode(), "real": pa.array(cols["real"], pa.float64()),
    })
    # the dict row of the same cells: timestamps as their isoformat() text
    rows = [{c: (v[k].isoformat() if c == "at" and v[k] is not None else v[k]) for c, v in cols.items()}
            for k in range(n)]
    return table, rows


def test_arrow_columns_and_dict_rows_write_the_same_bytes(monkeypatch):
    table, rows = awkward_table()
    header = table.schema.names
    expected, n = csv_bytes(header, rows)
    assert table_csv_bytes(header, table) == (expected, n)
    assert table_csv_bytes(header[::-1], table) == csv_bytes(header[::-1], rows)
    monkeypatch.setattr(submission_writer, "CHUNK_ROWS", 3)       # a large table is written in slices
    assert table_csv_bytes(header, table) == (expected, n)
    assert table_csv_bytes(header, Chunks(table.to_batches(max_chunksize=4))) == (expected, n)
    # a column missing from the table is empty, as a key missing from a dict row
    assert table_csv_bytes(["text", "absent"], table) == csv_bytes(["text", "absent"], rows)
    # a lone column: csv.writer quotes an empty field so the row is not blank
    assert table_csv_bytes(["text"], table) == csv_bytes(["text"], rows)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.text(max_size=12)),
                          st.one_of(st.none(), st.integers(-2 ** 63, 2 ** 63 - 1)),
                          st.one_of(st.none(), st.booleans())), min_size=1, max_size=25))
def test_any_text_and_numbers_write_the_same_bytes_both_ways(cells):
    text, number, flag = (list(c) for c in zip(*cells))
    table = pa.table({"t": pa.array(text, pa.string()), "n": pa.array(number, pa.int64()),
                      "f": pa.array(flag, pa.bool_()), "d": pa.array(text, pa.string()).dictionary_encode()})
    rows = [dict(t=a, n=b, f=c, d=a) for a, b, c in cells]
    assert table_csv_bytes(["t", "n", "f", "d"], table) == csv_bytes(["t", "n", "f", "d"], rows)


def test_patched_cells_replace_typed_ones():
    at = pa.array([datetime(2025, 3, 22, 9, 40, tzinfo=TZ8)] * 4, pa.timestamp("s", tz="+08:00"))
    dose = pa.array([375, 250, 480, 5], pa.int64())
    chunk = {"at": Patched(at, [1, 3], ["2025-03-22T09:40:00", "yesterday, late"]),
             "dose": Patched(dose, [2], string_array(["480 mg"]))}
    rows = [dict(at="2025-03-22T09:40:00+08:00", dose=375), dict(at="2025-03-22T09:40:00", dose=250),
            dict(at="2025-03-22T09:40:00+08:00", dose="480 mg"), dict(at="yesterday, late", dose=5)]
    assert table_csv_bytes(["at", "dose"], Chunks([chunk])) == csv_bytes(["at", "dose"], rows)


def test_write_submission_from_dicts_or_arrow_writes_the_same_folder(tmp_path):
    patients = [dict(patient_ref="MRN-001-1000001", sex="female", age_at_first_dose=52, tumor_type="cervical",
                     weight_kg=Decimal("56.0"), first_dose_date=date(2025, 3, 1), recorded_at="2025-03-01T10:05:00+08:00"),
                dict(patient_ref='MRN "2", odd', sex="male", age_at_first_dose=61, tumor_type="hcc",
                     weight_kg=None, first_dose_date=date(2025, 3, 2), recorded_at="2025-03-02T11:00:00+08:00")]
    table = pa.table({
        "patient_ref": pa.array([p["patient_ref"] for p in patients]),
        "sex": pa.array([p["sex"] for p in patients]).dictionary_encode(),
        "age_at_first_dose": pa.array([52, 61], pa.int8()),
        "tumor_type": pa.array(["cervical", "hcc"]),
        "weight_kg": pa.array([Decimal("56.0"), None], pa.decimal128(5, 1)),
        "first_dose_date": pa.array([date(2025, 3, 1), date(2025, 3, 2)], pa.date32()),
        "recorded_at": pa.array([datetime(2025, 3, 1, 10, 5, tzinfo=TZ8), datetime(2025, 3, 2, 11, 0, tzinfo=TZ8)],
                                pa.timestamp("s", tz="+08:00"))})
    a = submission_writer.write_submission(tmp_path / "a", "SITE-A", "s1", "2025-03-23T08:00:00+08:00",
                                           {"patients.csv": patients, "iraes.csv": []})
    b = submission_writer.write_submission(tmp_path / "b", "SITE-A", "s1", "2025-03-23T08:00:00+08:00",
                                           {"patients.csv": table, "iraes.csv": Chunks([])}, fsync=False)
    assert tree_bytes(a) == tree_bytes(b)
    manifest = json.loads((b / "manifest.json").read_text())
    for name, listed in manifest["files"].items():   # the streamed hash is that of the file on disk
        assert hashlib.sha256((b / name).read_bytes()).hexdigest() == listed["sha256"]
    assert manifest["files"]["patients.csv"]["rows"] == 2 and manifest["files"]["iraes.csv"]["rows"] == 0
    assert not [p for p in b.iterdir() if p.name.startswith(".")], "no temporary file left behind"


def test_writer_refuses_what_it_cannot_format():
    with pytest.raises(TypeError):
        table_csv_bytes(["t"], pa.table({"t": pa.array([1], pa.timestamp("ms"))}))
    with pytest.raises(TypeError):
        table_csv_bytes(["t"], pa.table({"t": pa.array([1], pa.timestamp("s", tz="Asia/Shanghai"))}))


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------
def test_add_arguments_gives_generate_keywords(tmp_path):
    p = argparse.ArgumentParser()
    p.add_argument("--out")
    generator.add_arguments(p)
    args = p.parse_args(["--out", str(tmp_path / "cli"), "--sites", "2", "--patients", "30", "--seed", "5",
                         "--invalid-rate", "0.1"])
    knobs = generator.kwargs_from_args(args)
    assert set(knobs) == set(generator.GENERATE_KEYWORDS)
    assert knobs["submissions_per_site"] == 3 and knobs["invalid_rate"] == 0.1
    s = generator.generate(Path(args.out), progress=None, **knobs)
    assert s.sites == ("SITE-001", "SITE-002")
    json.loads(generator.summary_json(s))


# --------------------------------------------------------------------------------------
# What ingestion does with it (the summary is what ingestion tests compare against)
# --------------------------------------------------------------------------------------
def test_ingestion_agrees_with_the_summary(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from safety_ledger.home import Home
    from safety_ledger.ingest import ingest_landing

    home = Home(tmp_path / "home").ensure()
    # one site, two submissions: every feature occurs, and GX runs only ten times
    s = generator.generate(home.landing, sites=1, patients=80, seed=5, submissions_per_site=2,
                           duplicate_rate=0.05, correction_rate=0.05, retraction_rate=0.05,
                           late_parent_rate=0.3, invalid_rate=0.1, progress=None)
    assert s.late_parents and s.expected_duplicates and sum(s.corrections.values()) and sum(s.retractions.values())
    reports = ingest_landing(home, progress=lambda _m: None)
    assert [r.status for r in reports] == ["accepted"] * len(s.submissions)
    assert sum(r.rows for r in reports) == s.total_rows
    assert sum(r.events for r in reports) == s.expected_events
    assert sum(r.duplicates for r in reports) == s.expected_duplicates
    assert sum(r.quarantined for r in reports) == s.expected_quarantined
    quarantined = {(d["site_id"], d["submission_id"], d["source_file"], d["source_row"], tuple(d["rules"]))
                   for f in home.quarantine.glob("*.parquet") for d in pq.read_table(f).to_pylist()}
    assert quarantined == {(x.site_id, x.submission_id, x.file, x.row, (x.rule,)) for x in s.invalid_rows}
