"""Ingest site submissions from ``$SAFETY_LEDGER_HOME/landing`` every 15 minutes.

One task wraps ``safety_ledger.ingest.ingest_landing``: every complete submission not yet in the
ledger becomes events (or quarantine rows) and one ledger row. A rejected submission is the
site's mistake, not a pipeline failure: it is logged with what the site must do, and the task
still succeeds. The task updates the ``SUBMISSION_EVENTS`` asset (which schedules
``build_warehouse``) only when it wrote something to the ledger, i.e. a submission was accepted
or rejected; with nothing new it ends as *skipped*, so the warehouse is not rebuilt for nothing.
"""
from __future__ import annotations

import logging

import pendulum
from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from assets import SUBMISSION_EVENTS

log = logging.getLogger("safety_ledger.dags")


@dag(
    schedule="*/15 * * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["safety-ledger"],
    doc_md=__doc__,
)
def ingest_site_submissions():
    @task(outlets=[SUBMISSION_EVENTS])
    def ingest() -> list[dict]:
        # GX logs ~200 INFO lines about its own internals when imported: keep the task log readable
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        from safety_ledger.home import Home
        from safety_ledger.ingest import ingest_landing

        home = Home.from_env()
        log.info("ingesting %s", home.landing)
        reports = ingest_landing(home, progress=log.info)
        for r in reports:  # a rejection is the site's to fix, not a pipeline failure
            (log.warning if r.status == "rejected" else log.info)(r.line())
        # accepted and rejected submissions both commit a ledger row; skipped (already
        # ingested) and waiting (manifest not there yet) ones change nothing.
        if not any(r.status in ("accepted", "rejected") for r in reports):
            raise AirflowSkipException("nothing new in the landing folder")
        return [r.as_dict() for r in reports]

    ingest()


ingest_site_submissions()
