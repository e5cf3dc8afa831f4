"""Ingest site submissions from ``$SAFETY_LEDGER_HOME/landing`` every 15 minutes.

One task wraps ``safety_ledger.ingest.ingest_landing``: every complete submission not yet in the
ledger becomes events (or quarantine rows) and one ledger row. A rejected submission is the
site's mistake, not a pipeline failure: it is logged with what the site must do, and the task
still succeeds. The task updates the ``SUBMISSION_EVENTS`` asset (which schedules
``build_warehouse``) only when it wrote something to the ledger; when there was nothing new it
ends as *skipped*, so the warehouse is not rebuilt for nothing.
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
        from safety_ledger.home import Home
        from safety_ledger.ingest import ingest_landing

        home = Home.from_env()
        log.info("ingesting %s", home.landing)
        reports = ingest_landing(home, progress=log.info)
        for r in reports:
            if r.status == "rejected":
                log.warning(
                    "REJECTED site=%s submission=%s: %s -- nothing of it was ingested; the site "
                    "must fix it and send it again as a new submission",
                    r.site_id, r.submission_id, r.reason)
            else:
                log.info("%s site=%s submission=%s rows=%s events=%s duplicates=%s quarantined=%s%s",
                         r.status.upper(), r.site_id, r.submission_id, r.rows, r.events,
                         r.duplicates, r.quarantined, f" ({r.reason})" if r.reason else "")
        if not any(r.status != "skipped" for r in reports):
            raise AirflowSkipException("no new submission in the landing folder")
        return [r.as_dict() for r in reports]

    ingest()


ingest_site_submissions()
