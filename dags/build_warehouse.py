"""Rebuild the DuckDB warehouse whenever new events were committed.

Scheduled on the ``SUBMISSION_EVENTS`` or ``LITERATURE_EVENTS`` asset (either one is enough).
One task wraps ``safety_ledger.build.build``: it builds ``$SAFETY_LEDGER_HOME/warehouse/safety.duckdb``
from every committed event (incrementally from the previous file when allowed, else by a full
replay; warehouse/README.md, Build 5), under a temporary name, then renamed over the old file,
so readers never see a half-built warehouse, and updates the ``WAREHOUSE`` asset.
"""
from __future__ import annotations

import logging

import pendulum
from airflow.sdk import dag, task

from assets import LITERATURE_EVENTS, SUBMISSION_EVENTS, WAREHOUSE

log = logging.getLogger("safety_ledger.dags")


@dag(
    schedule=(SUBMISSION_EVENTS | LITERATURE_EVENTS),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["safety-ledger"],
    doc_md=__doc__,
)
def build_warehouse():
    @task(outlets=[WAREHOUSE])
    def build() -> dict:
        from safety_ledger.build import build as build_ledger
        from safety_ledger.home import Home

        summary = build_ledger(Home.from_env(), progress=log.info)
        as_of, built_at = summary.as_of, getattr(summary, "built_at", None)
        result = {
            "path": str(summary.path),
            "as_of": as_of.isoformat() if as_of else None,
            "built_at": built_at.isoformat() if built_at else None,
            "marts": dict(getattr(summary, "marts", {}) or {}),
        }
        log.info("warehouse built: %s", result)
        return result

    build()


build_warehouse()
