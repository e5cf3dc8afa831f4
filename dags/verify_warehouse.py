"""Prove, once a week, that the published warehouse is what a full replay of the events gives.

One task wraps ``safety_ledger.replay_check.build_and_verify``, as ``safety-ledger build
--verify-replay`` does (warehouse/README.md, Build 6): it builds as usual (incrementally when
allowed), then, holding the ingest lock, replays every event into a temporary folder and
compares the two files, relation by relation and row by row. Same: the task succeeds. Different:
its log lists the relations that differed (a defect in an incremental rule, to be reported), a
full replay is published instead (its figures are right), and the task fails without retrying.
When that week's build was itself a full replay there is nothing incremental to check: the task
says so and succeeds. It costs one full replay (about a minute at 10 million events). A task that
succeeds updates the ``WAREHOUSE`` asset (the file was published again); a failed one records no
asset event, as Airflow does for every failed task.
"""
from __future__ import annotations

import logging

import pendulum
from airflow.sdk import dag, task

from assets import WAREHOUSE

log = logging.getLogger("safety_ledger.dags")


@dag(
    schedule="@weekly",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["safety-ledger"],
    doc_md=__doc__,
)
def verify_warehouse():
    @task(outlets=[WAREHOUSE], retries=0)
    def verify() -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from safety_ledger.home import Home
        from safety_ledger.replay_check import build_and_verify

        check = build_and_verify(Home.from_env(), progress=log.info)
        for line in check.lines():
            (log.info if check.ok else log.error)(line)
        if not check.ok:
            raise AirflowFailException(check.lines()[0])
        return {"path": str(check.built.path), "mode": check.built.mode,
                "relations": check.comparison.relations, "rows": check.comparison.rows}

    verify()


verify_warehouse()
