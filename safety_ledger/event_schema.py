"""The Parquet schema of every event table under $SAFETY_LEDGER_HOME/events/.

Layout (one immutable file per ingested batch, never rewritten):

    events/<table>/<batch_id>.parquet      table in TABLES below
    events/submissions/<batch_id>.parquet  the ledger: written last, it commits the batch
    events/literature/<batch_id>.parquet   publications of one literature drop
    events/literature_drops/<batch_id>.parquet   the literature ledger, written last
    quarantine/<batch_id>.parquet          rows that broke a rule, with machine-readable rules

A batch's event and quarantine files count only once its ledger file exists (the
commit point); the build reads every table joined to the ledger, so a crash between
the files and the ledger leaves nothing visible.
"""
from __future__ import annotations

import pyarrow as pa

from . import contract

TS = pa.timestamp("us", tz="UTC")
STR_LIST = pa.list_(pa.string())

# Parquet's dictionary encoding hashes every value of a column and keeps the distinct ones:
# where nearly every value is distinct (ids, hashes, instants, a record's own ref) it only
# costs, so these columns are written plain. Measured on 40 infusion files of the 1m
# bench landing: 1.44 -> 1.14 us a row to write, 72.4 -> 61.2 bytes a row on disk.
PLAIN_COLUMNS = frozenset({"event_id", "source_row", "recorded_at", "recorded_at_text", "content_hash",
                           "started_at", "infusion_ref", "reaction_ref", "irae_ref"})


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns of an event table that Parquet should dictionary-encode."""
    return [f.name for f in schema if f.name not in PLAIN_COLUMNS]


# Every event row carries where it came from and when.
LINEAGE = [
    ("event_id", pa.string()),        # <batch_id>:<file>:<row>
    ("batch_id", pa.string()),        # one accepted submission = one batch
    ("site_id", pa.string()),
    ("submission_id", pa.string()),
    ("source_file", pa.string()),
    ("source_row", pa.int64()),       # 1-based data row in the file (header excluded)
    ("recorded_at", TS),              # when the site recorded this version (UTC)
    ("recorded_at_text", pa.string()),  # as sent, with the site's offset
    ("ingested_at", TS),              # when the pipeline committed the batch
    ("content_hash", pa.string()),    # sha256 of the row's record content, for duplicates
]

RECORD_COLUMNS: dict[str, list[tuple[str, pa.DataType]]] = {
    "patients": [
        ("patient_key", pa.string()),  # keyed HMAC of patient_ref; never the raw ref
        ("sex", pa.string()),
        ("age_at_first_dose", pa.int32()),
        ("tumor_type", pa.string()),
        ("weight_kg", pa.float64()),
        ("first_dose_date", pa.date32()),
    ],
    "infusions": [
        ("infusion_ref", pa.string()),
        ("patient_key", pa.string()),
        ("cycle", pa.int32()),
        ("started_at", TS),
        ("started_local_date", pa.date32()),  # the calendar date at the site
        ("dose_mg", pa.float64()),
        ("planned_duration_min", pa.int32()),
        ("protocol", pa.string()),
        ("combination", STR_LIST),
        ("premedication", STR_LIST),
        ("completed", pa.bool_()),
    ],
    "reactions": [
        ("reaction_ref", pa.string()),
        ("infusion_ref", pa.string()),
        ("onset_min", pa.int32()),
        ("term", pa.string()),
        ("grade", pa.int32()),
        ("symptoms", STR_LIST),
        ("treatment", STR_LIST),
        ("outcome", pa.string()),
    ],
    "iraes": [
        ("irae_ref", pa.string()),
        ("patient_key", pa.string()),
        ("onset_date", pa.date32()),
        ("category", pa.string()),
        ("grade", pa.int32()),
        ("treatment", STR_LIST),
        ("outcome", pa.string()),
    ],
    "retractions": [
        ("record_type", pa.string()),
        ("ref", pa.string()),  # for record_type 'patient', the pseudonymized key
        ("reason", pa.string()),
    ],
}

# contract file name -> event table name, and the key column of the event table
TABLE_OF_FILE = {"patients.csv": "patients", "infusions.csv": "infusions",
                 "reactions.csv": "reactions", "iraes.csv": "iraes",
                 "retractions.csv": "retractions", "publications.csv": "literature"}
KEY_OF_TABLE = {"patients": "patient_key", "infusions": "infusion_ref",
                "reactions": "reaction_ref", "iraes": "irae_ref", "retractions": None}
TABLES = tuple(RECORD_COLUMNS)

SUBMISSIONS = pa.schema([
    ("batch_id", pa.string()),
    ("site_id", pa.string()),
    ("submission_id", pa.string()),
    ("manifest_sha256", pa.string()),
    ("exported_at", TS),
    ("ingested_at", TS),
    ("status", pa.string()),          # accepted | rejected
    ("reason", pa.string()),          # why rejected; null when accepted
    ("rule", pa.string()),            # machine-readable rejection rule; null when accepted
    ("rows", pa.int64()),
    ("events", pa.int64()),
    ("duplicates", pa.int64()),
    ("quarantined", pa.int64()),
    ("files_json", pa.string()),      # per input file {rows, events, duplicates, quarantined}
    ("outputs_json", pa.string()),    # every file the batch wrote: {path under home: sha256}
])

QUARANTINE = pa.schema([
    ("batch_id", pa.string()),
    ("site_id", pa.string()),
    ("submission_id", pa.string()),
    ("source_file", pa.string()),
    ("source_row", pa.int64()),
    ("rules", STR_LIST),              # machine-readable, e.g. infusions.cycle.range
    ("reason", pa.string()),          # the same for a person: what is wrong, what to do
    ("row_json", pa.string()),        # the row as sent, patient_ref pseudonymized
    ("ingested_at", TS),
])

LITERATURE = pa.schema([
    ("event_id", pa.string()),
    ("batch_id", pa.string()),
    ("drop_id", pa.string()),
    ("source_file", pa.string()),
    ("source_row", pa.int64()),
    ("recorded_at", TS),
    ("recorded_at_text", pa.string()),
    ("ingested_at", TS),
    ("content_hash", pa.string()),
    ("publication_id", pa.string()),
    ("title", pa.string()),
    ("indication", pa.string()),
    ("study_type", pa.string()),
    ("key_finding", pa.string()),
])


LITERATURE_DROPS = pa.schema([
    ("batch_id", pa.string()),
    ("drop_id", pa.string()),
    ("manifest_sha256", pa.string()),
    ("exported_at", TS),
    ("ingested_at", TS),
    ("status", pa.string()),          # accepted | rejected
    ("reason", pa.string()),
    ("rule", pa.string()),
    ("rows", pa.int64()),
    ("events", pa.int64()),
    ("duplicates", pa.int64()),
    ("quarantined", pa.int64()),
    ("outputs_json", pa.string()),
])


def schema(table: str) -> pa.Schema:
    """Arrow schema of one event table (lineage columns first, then the record)."""
    if table == "submissions":
        return SUBMISSIONS
    if table == "literature":
        return LITERATURE
    if table == "quarantine":
        return QUARANTINE
    if table == "literature_drops":
        return LITERATURE_DROPS
    return pa.schema(LINEAGE + RECORD_COLUMNS[table])


assert set(contract.FILES) < set(TABLE_OF_FILE)
