"""The Airflow Assets shared by the safety-ledger DAGs.

An Asset update here means "new committed events exist": ``ingest_site_submissions`` and
``ingest_literature`` emit them, ``build_warehouse`` is scheduled on them and emits ``WAREHOUSE``.

The URIs use a user-defined ``x-`` scheme, which Airflow 3 stores as plain strings without
semantic checks, so they do not depend on where ``$SAFETY_LEDGER_HOME`` happens to be.
Airflow puts the dags folder on ``sys.path``, so the DAG files import this module as ``assets``.
"""
from __future__ import annotations

from airflow.sdk import Asset

SUBMISSION_EVENTS = Asset(
    name="safety_ledger_submission_events",
    uri="x-safety-ledger://events/submissions",
    extra={"what": "committed site-submission batches under $SAFETY_LEDGER_HOME/events"},
)
LITERATURE_EVENTS = Asset(
    name="safety_ledger_literature_events",
    uri="x-safety-ledger://events/literature",
    extra={"what": "committed literature drops under $SAFETY_LEDGER_HOME/events"},
)
WAREHOUSE = Asset(
    name="safety_ledger_warehouse",
    uri="x-safety-ledger://warehouse/safety.duckdb",
    extra={"what": "$SAFETY_LEDGER_HOME/warehouse/safety.duckdb, rebuilt from the events"},
)
