"""Ingest literature drops from ``$SAFETY_LEDGER_HOME/literature`` once a day.

One task wraps ``safety_ledger.literature.ingest_literature``. It updates the
``LITERATURE_EVENTS`` asset (which schedules ``build_warehouse``) only when it wrote something to
the literature ledger, i.e. a drop was accepted or rejected; with nothing new it ends as
*skipped*. A rejected drop is logged as a warning and does not fail the task.
"""
from __future__ import annotations

import logging

import pendulum
from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from assets import LITERATURE_EVENTS

log = logging.getLogger("safety_ledger.dags")


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["safety-ledger"],
    doc_md=__doc__,
)
def ingest_literature():
    @task(outlets=[LITERATURE_EVENTS])
    def ingest() -> list[dict]:
        # GX logs ~200 INFO lines about its own internals when imported: keep the task log readable
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        from safety_ledger.home import Home
        from safety_ledger.literature import ingest_literature as ingest_drops

        home = Home.from_env()
        log.info("ingesting %s", home.literature_landing)
        reports = ingest_drops(home, progress=log.info)
        for r in reports:  # a rejected drop is the curator's to fix, not a pipeline failure
            (log.warning if r.status == "rejected" else log.info)(r.line())
        # accepted and rejected drops both commit a ledger row; skipped and waiting ones don't
        if not any(r.status in ("accepted", "rejected") for r in reports):
            raise AirflowSkipException("no new literature drop")
        return [r.as_dict() for r in reports]

    ingest()


ingest_literature()
