"""No raw patient_ref anywhere the pipeline writes: events, quarantine, ledger, GX results
and Data Docs, the warehouse, and what the commands print. Parquet and DuckDB compress
their strings, so their values are read back and searched, not their bytes."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from safety_ledger.cli import main
from safety_ledger.generator import generate

REPO = Path(__file__).resolve().parents[1]


def raw_refs(landing: Path) -> set[str]:
    refs = set()
    for path in landing.rglob("*.csv"):
        with open(path, encoding="utf-8-sig", newline="") as f:
            for row in csv.DictReader(f):
                for col in ("patient_ref", "ref"):
                    if row.get(col) and (col == "patient_ref" or row.get("record_type") == "patient"):
                        refs.add(row[col])
    return refs


def strings_in_parquet(path: Path):
    for column in pq.read_table(path).to_pylist():
        for value in column.values():
            if isinstance(value, str):
                yield value
            elif isinstance(value, list):
                yield from (v for v in value if isinstance(v, str))


def strings_in_warehouse(path: Path):
    with duckdb.connect(str(path), read_only=True) as con:
        cols = con.execute("""SELECT table_schema, table_name, column_name FROM information_schema.columns
                              WHERE data_type = 'VARCHAR'""").fetchall()
        for schema, table, column in cols:
            yield from (v for (v,) in con.execute(f'SELECT DISTINCT "{column}" FROM "{schema}"."{table}"').fetchall()
                        if v is not None)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    home = tmp_path_factory.mktemp("pii-home")
    shutil.copytree(REPO / "samples" / "landing" / "SEED-CASES", home / "landing" / "SEED-CASES")
    generate(home / "landing", sites=2, patients=60, seed=11, progress=lambda _: None)
    return home


def test_nothing_written_or_printed_holds_a_raw_patient_ref(run, capsys):
    home = run
    refs = raw_refs(home / "landing")
    assert len(refs) > 60  # the seed's 4, the generator's 60 and the patients they retract
    for args in (["ingest"], ["build"], ["verify"]):
        assert main(["--home", str(home), *args]) == 0
    printed = capsys.readouterr()
    leaks = []
    for path in home.rglob("*"):
        if not path.is_file() or "landing" in path.relative_to(home).parts or path.name == "secret.key":
            continue
        if path.suffix == ".parquet":
            values = list(strings_in_parquet(path))
        elif path.suffix == ".duckdb":
            values = list(strings_in_warehouse(path))
        else:
            values = [path.read_bytes().decode("utf-8", "replace")]
        leaks += [(str(path.relative_to(home)), ref) for ref in refs for v in values if ref in v]
    leaks += [("stdout/stderr", ref) for ref in refs if ref in printed.out + printed.err]
    assert leaks == []
    # and the data was really there to leak: quarantined rows and Data Docs were written
    assert list((home / "quarantine").glob("*.parquet"))
    assert (home / "data_docs" / "index.html").exists()
