"""Write committed event batches directly as Parquet, for the warehouse build's tests.

Independent of the ingestion code on purpose: a test states its events, this module
lays them out exactly as event_schema.py describes (events/<table>/<batch_id>.parquet,
then the ledger row events/submissions/<batch_id>.parquet that commits the batch).

Record helpers take the contract's values (timestamps as ISO 8601 strings with an
offset, dates as YYYY-MM-DD) and fill sensible defaults; recorded_at defaults to the
batch's ingested_at.
"""
from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from safety_ledger import event_schema
from safety_ledger.build import build
from safety_ledger.home import Home

UTC = timezone.utc


def ts(value: str | datetime) -> datetime:
    """An ISO 8601 timestamp (with offset; 'Z' allowed) as an aware datetime in UTC."""
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"timestamp without offset: {value!r}")
    return dt.astimezone(UTC)


def _date(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


# ---------------------------------------------------------------------------- records


def patient(key: str, *, tumor_type: str = "cervical", first_dose_date: str = "2025-01-01",
            sex: str = "female", age_at_first_dose: int = 60, weight_kg: float | None = 60.0,
            recorded_at: str | None = None) -> dict[str, Any]:
    return {"patient_key": key, "sex": sex, "age_at_first_dose": age_at_first_dose,
            "tumor_type": tumor_type, "weight_kg": weight_kg,
            "first_dose_date": _date(first_dose_date), "recorded_at": recorded_at}


def infusion(ref: str, patient_key: str, *, cycle: int = 1,
             started_at: str = "2025-01-10T09:00:00+08:00", started_local_date: str | None = None,
             combination: Iterable[str] = (), premedication: Iterable[str] = (),
             protocol: str = "standard", completed: bool = True, dose_mg: float = 375.0,
             planned_duration_min: int = 60, recorded_at: str | None = None) -> dict[str, Any]:
    """started_local_date defaults to the calendar date of started_at in its own offset
    (the site's local date)."""
    local = (_date(started_local_date) if started_local_date
             else datetime.fromisoformat(started_at.replace("Z", "+00:00")).date())
    return {"infusion_ref": ref, "patient_key": patient_key, "cycle": cycle,
            "started_at": ts(started_at), "started_local_date": local, "dose_mg": dose_mg,
            "planned_duration_min": planned_duration_min, "protocol": protocol,
            "combination": list(combination), "premedication": list(premedication),
            "completed": completed, "recorded_at": recorded_at}


def reaction(ref: str, infusion_ref: str, *, grade: int = 1,
             term: str = "infusion_related_reaction", onset_min: int = 10,
             symptoms: Iterable[str] = ("rash",), treatment: Iterable[str] = (),
             outcome: str | None = None, recorded_at: str | None = None) -> dict[str, Any]:
    return {"reaction_ref": ref, "infusion_ref": infusion_ref, "onset_min": onset_min,
            "term": term, "grade": grade, "symptoms": list(symptoms),
            "treatment": list(treatment),
            "outcome": outcome or ("fatal" if grade == 5 else "recovered"),
            "recorded_at": recorded_at}


def irae(ref: str, patient_key: str, *, onset_date: str = "2025-02-01",
         category: str = "hepatitis", grade: int = 1, treatment: Iterable[str] = (),
         outcome: str | None = None, recorded_at: str | None = None) -> dict[str, Any]:
    return {"irae_ref": ref, "patient_key": patient_key, "onset_date": _date(onset_date),
            "category": category, "grade": grade, "treatment": list(treatment),
            "outcome": outcome or ("fatal" if grade == 5 else "recovered"),
            "recorded_at": recorded_at}


def retraction(record_type: str, ref: str, *, reason: str = "entered in error",
               recorded_at: str | None = None) -> dict[str, Any]:
    return {"record_type": record_type, "ref": ref, "reason": reason,
            "recorded_at": recorded_at}


def publication(publication_id: str, *, title: str = "A title", indication: str = "cervical",
                study_type: str = "case_report", key_finding: str | None = "a finding",
                recorded_at: str | None = None) -> dict[str, Any]:
    return {"publication_id": publication_id, "title": title, "indication": indication,
            "study_type": study_type, "key_finding": key_finding, "recorded_at": recorded_at}


# ---------------------------------------------------------------------------- batches


def _content_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def _write(path: Path, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def write_batch(home: Home, batch_id: str, *, site_id: str = "SITE-A",
                submission_id: str | None = None,
                ingested_at: str = "2025-06-01T00:00:00Z", commit: bool = True,
                status: str = "accepted", reason: str | None = None,
                quarantine: Iterable[Mapping[str, Any]] = (), duplicates: int = 0,
                **tables: Iterable[Mapping[str, Any]]) -> None:
    """One batch: events/<table>/<batch_id>.parquet for each keyword table (patients,
    infusions, reactions, iraes, retractions: lists of record dicts from the helpers
    above), quarantine/<batch_id>.parquet if any, and - when `commit` - the ledger row
    events/submissions/<batch_id>.parquet, written last."""
    submission_id = submission_id or batch_id
    ingested = ts(ingested_at)
    n_events = 0
    for table, records in tables.items():
        if table not in event_schema.TABLES:
            raise ValueError(f"unknown event table {table!r}")
        rows = []
        for i, rec in enumerate(records, start=1):
            rec = dict(rec)
            recorded = ts(rec.pop("recorded_at") or ingested)
            rows.append({
                "event_id": f"{batch_id}:{table}.csv:{i}", "batch_id": batch_id,
                "site_id": site_id, "submission_id": submission_id,
                "source_file": f"{table}.csv", "source_row": i,
                "recorded_at": recorded, "recorded_at_text": recorded.isoformat(),
                "ingested_at": ingested, "content_hash": _content_hash(rec), **rec})
        _write(home.events / table / f"{batch_id}.parquet", rows, event_schema.schema(table))
        n_events += len(rows)
    q_rows = [{"batch_id": batch_id, "site_id": site_id, "submission_id": submission_id,
               "source_file": "infusions.csv", "source_row": i, "rules": ["some.rule"],
               "reason": "broken", "row_json": "{}", "ingested_at": ingested, **dict(q)}
              for i, q in enumerate(quarantine, start=1)]
    if q_rows:
        _write(home.quarantine / f"{batch_id}.parquet", q_rows, event_schema.QUARANTINE)
    if not commit:
        return
    accepted = status == "accepted"
    ledger = {"batch_id": batch_id, "site_id": site_id, "submission_id": submission_id,
              "manifest_sha256": "0" * 64, "exported_at": ingested, "ingested_at": ingested,
              "status": status, "reason": reason, "rule": None if accepted else "manifest.sha256",
              "rows": n_events + duplicates + len(q_rows), "events": n_events,
              "duplicates": duplicates, "quarantined": len(q_rows), "files_json": "{}"}
    _write(home.events / "submissions" / f"{batch_id}.parquet", [ledger], event_schema.SUBMISSIONS)


def write_literature_drop(home: Home, batch_id: str, publications: Iterable[Mapping[str, Any]],
                          *, drop_id: str | None = None, status: str = "accepted",
                          ingested_at: str = "2025-06-01T00:00:00Z", commit: bool = True) -> None:
    """events/literature/<batch_id>.parquet, then (when `commit`) the drop's ledger row
    events/literature_drops/<batch_id>.parquet."""
    drop_id = drop_id or batch_id
    ingested = ts(ingested_at)
    rows = []
    for i, rec in enumerate(publications, start=1):
        rec = dict(rec)
        recorded = ts(rec.pop("recorded_at") or ingested)
        rows.append({"event_id": f"{batch_id}:publications.csv:{i}", "batch_id": batch_id,
                     "drop_id": drop_id, "source_file": "publications.csv", "source_row": i,
                     "recorded_at": recorded, "recorded_at_text": recorded.isoformat(),
                     "ingested_at": ingested, "content_hash": _content_hash(rec), **rec})
    _write(home.events / "literature" / f"{batch_id}.parquet", rows, event_schema.LITERATURE)
    if commit:
        accepted = status == "accepted"
        _write(home.events / "literature_drops" / f"{batch_id}.parquet",
               [{"batch_id": batch_id, "drop_id": drop_id, "manifest_sha256": "0" * 64,
                 "exported_at": ingested, "ingested_at": ingested, "status": status,
                 "reason": None if accepted else "rejected", "rule": None if accepted else "manifest.sha256",
                 "rows": len(rows), "events": len(rows), "duplicates": 0, "quarantined": 0}],
               event_schema.schema("literature_drops"))


# ---------------------------------------------------------------------------- reading


def quiet(_: str) -> None:
    pass


def build_home(home: Home, **kwargs: Any) -> Path:
    """Build the warehouse of `home` silently; returns its path."""
    return build(home, progress=quiet, **kwargs).path


def rows(path: Path, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """Rows of a query on the warehouse file, as dicts (read-only connection, closed)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        con.close()


def one(path: Path, sql: str, params: list[Any] | None = None) -> dict[str, Any]:
    out = rows(path, sql, params)
    assert len(out) == 1, f"expected one row, got {out}"
    return out[0]
