"""Ingest literature drops from ``$SAFETY_LEDGER_HOME/literature`` once a day.

One task wraps ``safety_ledger.literature.ingest_literature``. It updates the
``LITERATURE_EVENTS`` asset (which schedules ``build_warehouse``) only when a drop was
ingested; with nothing new it ends as *skipped*.
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
        from safety_ledger.home import Home
        from safety_ledger.literature import ingest_literature as ingest_drops

        home = Home.from_env()
        log.info("ingesting %s", home.literature_landing)
        reports = [r.as_dict() for r in ingest_drops(home, progress=log.info)]
        for r in reports:
            log.info("drop: %s", r)
        if all(r.get("status") in ("skipped", "waiting") for r in reports):
            raise AirflowSkipException("no new literature drop")
        return reports

    ingest()


ingest_literature()
