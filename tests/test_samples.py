"""The committed samples: the seed submission and the seed literature drop.

Reads only the files and safety_ledger.contract (the contract as data), so it does not
depend on the ingestion or warehouse code. Also re-derives the hand-computed figures of
tests/seed_expected.py from the rows, as a check on the arithmetic.
"""
from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import re
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from safety_ledger import contract

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("seed_expected", Path(__file__).with_name("seed_expected.py"))
expected = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(expected)

SEED = ROOT / expected.LANDING_FOLDER
LIT = ROOT / expected.LITERATURE_FOLDER
STUDY_TYPES = {"case_report", "phase1", "phase1b_2", "phase2", "phase3", "real_world",
               "health_economics", "review", "other"}


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    raw = path.read_bytes()
    text = raw.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    header, *body = list(reader)
    return header, [dict(zip(header, r, strict=True)) for r in body]


def ts(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"timestamp without offset: {value}"
    return parsed


def check_manifest(folder: Path, manifest: dict) -> None:
    listed = manifest["files"]
    present = {p.name for p in folder.glob("*.csv")}
    assert present == set(listed), "a CSV present but not listed, or listed but missing"
    for name, entry in listed.items():
        data = (folder / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b""), f"{name}: not CRLF"
        _, rows = read_csv(folder / name)
        assert len(rows) == entry["rows"], name


# ---------------------------------------------------------------- seed submission

@pytest.fixture(scope="module")
def seed():
    manifest = json.loads((SEED / contract.MANIFEST).read_text(encoding="utf-8"))
    files = {name: read_csv(SEED / name) for name in manifest["files"]}
    return manifest, files


def test_seed_manifest_matches_files(seed):
    manifest, _ = seed
    assert manifest["schema_version"] == contract.SCHEMA_VERSION
    assert manifest["site_id"] == SEED.parent.name == expected.SITE_ID
    assert manifest["submission_id"] == SEED.name == expected.SUBMISSION_ID
    assert contract.ID_PATTERN_SITE.match(manifest["site_id"])
    assert contract.ID_PATTERN_SUBMISSION.match(manifest["submission_id"])
    ts(manifest["exported_at"])
    check_manifest(SEED, manifest)
    assert {n: e["rows"] for n, e in manifest["files"].items()} == expected.ROWS


def _check_cell(col: contract.Column, value: str) -> None:
    if value == "":
        assert col.nullable or col.kind == "list", f"{col.name} is empty"
        if col.kind == "list":
            assert col.min_items == 0, f"{col.name} needs at least {col.min_items} token"
        return
    if col.kind in ("int", "float"):
        number = int(value) if col.kind == "int" else float(value)
        if col.min is not None:
            assert number > col.min if col.strict_min else number >= col.min, (col.name, value)
        if col.max is not None:
            assert number <= col.max, (col.name, value)
    elif col.kind == "date":
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)
        date.fromisoformat(value)
    elif col.kind == "timestamp":
        ts(value)
    elif col.kind in ("enum", "bool"):
        assert value in col.vocabulary, (col.name, value)
    elif col.kind == "list":
        tokens = value.split(";")
        assert len(tokens) >= col.min_items
        assert all(t in col.vocabulary for t in tokens), (col.name, value)
        assert len(set(tokens)) == len(tokens), (col.name, value)
    elif col.kind == "string" and col.max_length is not None:
        assert 1 <= len(value) <= col.max_length


def test_seed_rows_meet_row_level_rules(seed):
    _, files = seed
    for name, (header, rows) in files.items():
        spec = contract.FILES[name]
        assert sorted(header) == sorted(spec.column_names), name
        for row in rows:
            for col in spec.columns:
                _check_cell(col, row[col.name])
            for first, second in spec.not_after:
                a, b = row[first], ts(row[second])
                if spec.column(first).kind == "date":
                    # not after recorded_at, read in the row's own offset and in UTC alike
                    assert date.fromisoformat(a) <= b.date(), (name, row)
                    assert date.fromisoformat(a) <= b.astimezone(timezone.utc).date(), (name, row)
                else:
                    assert ts(a) <= b, (name, row)
            if spec.fatal_iff_grade5:
                assert (row["outcome"] == "fatal") == (row["grade"] == "5")
        if spec.key:
            keys = [r[spec.key] for r in rows]
            assert len(keys) == len(set(keys)), f"{name}: duplicate {spec.key}"


def test_seed_cross_record_rules(seed):
    _, files = seed
    patients = {r["patient_ref"]: r for r in files["patients.csv"][1]}
    infusions = {r["infusion_ref"]: r for r in files["infusions.csv"][1]}
    for inf in infusions.values():
        assert inf["patient_ref"] in patients
        first = date.fromisoformat(patients[inf["patient_ref"]]["first_dose_date"])
        started = ts(inf["started_at"])
        # not before first_dose_date, read in the row's own offset and in UTC alike
        assert started.date() >= first, inf
        assert started.astimezone(timezone.utc).date() >= first, inf
    for rx in files["reactions.csv"][1]:
        assert rx["infusion_ref"] in infusions
    # each patient's cycle numbers run 1..n in started_at order
    by_patient: dict[str, list[dict]] = {}
    for inf in infusions.values():
        by_patient.setdefault(inf["patient_ref"], []).append(inf)
    for infs in by_patient.values():
        infs.sort(key=lambda r: ts(r["started_at"]))
        assert [int(r["cycle"]) for r in infs] == list(range(1, len(infs) + 1))


def _derive(files):
    """Independent re-derivation of the marts-v1 figures from the rows (checks the hand work)."""
    patients = {r["patient_ref"]: r for r in files["patients.csv"][1]}
    infusions = files["infusions.csv"][1]
    grades: dict[str, list[int]] = {}
    for rx in files["reactions.csv"][1]:
        grades.setdefault(rx["infusion_ref"], []).append(int(rx["grade"]))

    def regimen(combination: str) -> str:
        agents = set(combination.split(";")) if combination else set()
        c, b, t = (bool(agents & set(g)) for g in (contract.CHEMOTHERAPY, contract.ANTI_ANGIOGENIC, contract.TKI))
        if not agents:
            return "monotherapy"
        if c and t:
            return "chemo_tki"
        if t and not c:
            return "tki"
        if c and b:
            return "chemo_bevacizumab"
        if c:
            return "chemotherapy"
        return "other"

    def group(key):
        out: dict = {}
        for inf in infusions:
            g = out.setdefault(key(inf), dict(infusions=0, reaction_infusions=0, grade3plus_infusions=0, patients=set()))
            g["infusions"] += 1
            g["reaction_infusions"] += inf["infusion_ref"] in grades
            g["grade3plus_infusions"] += max(grades.get(inf["infusion_ref"], [0])) >= 3
            g["patients"].add(inf["patient_ref"])
        return {k: {**v, "patients": len(v["patients"])} for k, v in out.items()}

    by_cycle = group(lambda r: int(r["cycle"]))
    by_tumor = group(lambda r: patients[r["patient_ref"]]["tumor_type"])
    by_regimen = group(lambda r: regimen(r["combination"]))
    overall = group(lambda r: "all")["all"]

    rechallenge: dict = {}
    for ref in patients:
        infs = sorted((r for r in infusions if r["patient_ref"] == ref), key=lambda r: ts(r["started_at"]))
        index = next((r for r in infs if r["infusion_ref"] in grades), None)
        if index is None:
            continue
        band = "3+" if max(grades[index["infusion_ref"]]) >= 3 else "1-2"
        later = [r for r in infs if ts(r["started_at"]) > ts(index["started_at"])]
        if later:
            rc = later[0]
            g = grades.get(rc["infusion_ref"], [])
            done = rc["completed"] == "true"
            outcome = ("tolerated" if done and not g else "breakthrough" if done and max(g) <= 2 else "failed")
            key = (rc["protocol"], rc["premedication"] != "", band)
        else:
            outcome, key = None, (None, None, band)
        row = rechallenge.setdefault(key, dict(patients_with_index_reaction=0, rechallenged=0, tolerated=0,
                                               breakthrough=0, failed=0))
        row["patients_with_index_reaction"] += 1
        if outcome:
            row["rechallenged"] += 1
            row[outcome] += 1
    for row in rechallenge.values():
        row["success_rate"] = ((row["tolerated"] + row["breakthrough"]) / row["rechallenged"]
                               if row["rechallenged"] else None)
    return overall, by_cycle, by_tumor, by_regimen, rechallenge


def test_seed_hand_figures_agree_with_rows(seed):
    _, files = seed
    overall, by_cycle, by_tumor, by_regimen, rechallenge = _derive(files)
    assert overall == expected.OVERALL
    assert by_cycle == expected.REACTION_RATE_BY_CYCLE
    assert by_tumor == expected.REACTION_RATE_BY_TUMOR_TYPE
    assert by_regimen == expected.REACTION_RATE_BY_REGIMEN
    assert rechallenge == expected.RECHALLENGE
    totals = {k: sum(r[k] for r in rechallenge.values())
              for k in ("patients_with_index_reaction", "rechallenged", "tolerated", "breakthrough", "failed")}
    assert totals == {k: v for k, v in expected.RECHALLENGE_TOTALS.items() if k != "successes"}
    assert totals["tolerated"] + totals["breakthrough"] == expected.RECHALLENGE_TOTALS["successes"] == 3


def test_seed_hand_wilson_intervals():
    z = 1.959964
    for name, w in expected.WILSON.items():
        k, n = w["k"], w["n"]
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / denom
        assert w["rate"] == pytest.approx(p), name
        assert w["ci_low"] == pytest.approx(max(0.0, centre - half), abs=expected.WILSON_ABS_TOL), name
        assert w["ci_high"] == pytest.approx(min(1.0, centre + half), abs=expected.WILSON_ABS_TOL), name


# ---------------------------------------------------------------- literature drop

@pytest.fixture(scope="module")
def literature():
    manifest = json.loads((LIT / "manifest.json").read_text(encoding="utf-8"))
    header, rows = read_csv(LIT / "publications.csv")
    return manifest, header, rows


def test_literature_manifest(literature):
    manifest, _, rows = literature
    assert manifest["schema_version"] == 1
    assert manifest["drop_id"] == LIT.name
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", manifest["drop_id"])
    ts(manifest["exported_at"])
    assert set(manifest["files"]) == {"publications.csv"}
    check_manifest(LIT, manifest)
    assert manifest["files"]["publications.csv"]["rows"] == len(rows) == expected.LITERATURE_ROWS == 30


def test_literature_rows(literature):
    _, header, rows = literature
    assert header == ["publication_id", "title", "indication", "study_type", "key_finding", "recorded_at"]
    ids = [r["publication_id"] for r in rows]
    assert len(set(ids)) == 30
    assert ids == [f"seed-t2-{i:02d}" for i in range(1, 10)] + [f"seed-t3-{i:02d}" for i in range(1, 22)]
    for r in rows:
        assert r["study_type"] in STUDY_TYPES
        assert r["title"] and r["indication"] and r["key_finding"]
        ts(r["recorded_at"])
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["study_type"]] = counts.get(r["study_type"], 0) + 1
    assert counts == expected.LITERATURE_BY_STUDY_TYPE
    assert all(r["study_type"] == "case_report" for r in rows[:9])
