"""The limit: one hand-written DuckDB query computing the three reaction-rate marts
(reaction_rate_by_cycle, _by_tumor_type, _by_regimen) straight from the committed Parquet
events, with no warehouse, no staging and no intermediate table.

    uv run python bench/limit.py --home H [--out DIR]     (DIR/<mart>.parquet)

It is the floor the warehouse build is measured against: a build must read, dedupe
and aggregate the same events, so it cannot be much faster than this.

Semantics followed (marts-v1, warehouse/README.md), all of them in the one query:
  * a batch counts when its ledger row (events/submissions/<batch_id>.parquet) says
    'accepted'; files of other batches are filtered out by batch_id;
  * current version of a record key (site_id, ref) = latest recorded_at, then latest
    ingested_at, then greatest event_id;
  * a retraction (site_id, record_type, ref) removes the record whatever the order of
    recorded_at, and cascades: a retracted patient takes its infusions and their
    reactions, a retracted infusion its reactions;
  * an infusion counts when its patient has a current (non-retracted) version at the
    site and started_local_date is not before that patient's first_dose_date; a
    reaction counts when its infusion counts (orphans, parent_retracted and
    parent_excluded all fall out of the inner joins);
  * tumor type = the patient's current tumor_type; regimen class from the infusion's
    combination with the agent groups of transforms/macros.sql; patients = distinct
    (site_id, patient_key); 95% Wilson interval, z = 1.959964, exact 0 / 1 at x = 0 / n.
Simplified: nothing for these three marts. Not done: the other marts (site funnel,
rechallenge, irAEs, submissions, literature), the as_of cut (everything committed is
used) and the data-issue bookkeeping the build keeps.
"""
from __future__ import annotations

from pathlib import Path

import duckdb

import reference_cli  # bench/, beside this script

Z = 1.959964

CHEMO = ["capecitabine", "oxaliplatin", "s1", "paclitaxel", "nab_paclitaxel", "docetaxel",
         "carboplatin", "cisplatin", "fluorouracil", "etoposide", "pemetrexed", "gemcitabine",
         "irinotecan", "leucovorin"]
BEV = ["bevacizumab"]
TKI = ["apatinib", "lenvatinib", "anlotinib", "regorafenib", "fruquintinib"]

MARTS = {"reaction_rate_by_cycle": "cycle", "reaction_rate_by_tumor_type": "tumor_type",
         "reaction_rate_by_regimen": "regimen_class"}


def _lit(values: list[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def query(events: Path) -> str:
    ev = str(events).replace("'", "''")

    def src(table: str) -> str:
        return f"read_parquet('{ev}/{table}/*.parquet', union_by_name = true)"

    wl = lambda x, n: f"""CASE WHEN {n} > 0 AND {x} = 0 THEN 0.0
             WHEN {n} > 0 THEN greatest(0.0, (({x})::DOUBLE / {n} + {Z}^2 / (2 * {n})) / (1 + {Z}^2 / {n})
                 - {Z} * sqrt((({x})::DOUBLE / {n}) * (1 - ({x})::DOUBLE / {n}) / {n} + {Z}^2 / (4 * {n}^2)) / (1 + {Z}^2 / {n})) END"""
    wh = lambda x, n: f"""CASE WHEN {n} > 0 AND {x} = {n} THEN 1.0
             WHEN {n} > 0 THEN least(1.0, (({x})::DOUBLE / {n} + {Z}^2 / (2 * {n})) / (1 + {Z}^2 / {n})
                 + {Z} * sqrt((({x})::DOUBLE / {n}) * (1 - ({x})::DOUBLE / {n}) / {n} + {Z}^2 / (4 * {n}^2)) / (1 + {Z}^2 / {n})) END"""
    combo = "coalesce(combination, []::VARCHAR[])"
    return f"""
WITH accepted AS (
    SELECT batch_id FROM {src('submissions')} WHERE status = 'accepted'
),
retracted AS (
    SELECT DISTINCT site_id, record_type, ref
    FROM {src('retractions')} WHERE batch_id IN (SELECT batch_id FROM accepted)
),
patients AS (      -- current, non-retracted patients
    SELECT site_id, patient_key, tumor_type, first_dose_date
    FROM {src('patients')} WHERE batch_id IN (SELECT batch_id FROM accepted)
    QUALIFY row_number() OVER (PARTITION BY site_id, patient_key
                               ORDER BY recorded_at DESC, ingested_at DESC, event_id DESC) = 1
),
live_patients AS (
    SELECT * FROM patients p
    WHERE NOT EXISTS (SELECT 1 FROM retracted r WHERE r.site_id = p.site_id
                      AND r.record_type = 'patient' AND r.ref = p.patient_key)
),
infusions AS (     -- current version of every infusion key
    SELECT site_id, infusion_ref, patient_key, cycle, started_local_date, combination
    FROM {src('infusions')} WHERE batch_id IN (SELECT batch_id FROM accepted)
    QUALIFY row_number() OVER (PARTITION BY site_id, infusion_ref
                               ORDER BY recorded_at DESC, ingested_at DESC, event_id DESC) = 1
),
live_infusions AS (
    SELECT i.site_id, i.infusion_ref, i.patient_key, i.cycle, p.tumor_type,
        CASE
            WHEN len({combo}) = 0 THEN 'monotherapy'
            WHEN list_has_any({combo}, {_lit(CHEMO)}) AND list_has_any({combo}, {_lit(TKI)}) THEN 'chemo_tki'
            WHEN list_has_any({combo}, {_lit(CHEMO)}) AND list_has_any({combo}, {_lit(BEV)}) THEN 'chemo_bevacizumab'
            WHEN list_has_any({combo}, {_lit(CHEMO)}) THEN 'chemotherapy'
            WHEN list_has_any({combo}, {_lit(TKI)}) THEN 'tki'
            ELSE 'other'
        END AS regimen_class
    FROM infusions i
    JOIN live_patients p ON p.site_id = i.site_id AND p.patient_key = i.patient_key
    WHERE NOT coalesce(i.started_local_date < p.first_dose_date, false)
      AND NOT EXISTS (SELECT 1 FROM retracted r WHERE r.site_id = i.site_id
                      AND r.record_type = 'infusion' AND r.ref = i.infusion_ref)
),
reactions AS (     -- current version of every reaction key
    SELECT site_id, reaction_ref, infusion_ref, grade
    FROM {src('reactions')} WHERE batch_id IN (SELECT batch_id FROM accepted)
    QUALIFY row_number() OVER (PARTITION BY site_id, reaction_ref
                               ORDER BY recorded_at DESC, ingested_at DESC, event_id DESC) = 1
),
live_reactions AS (
    SELECT * FROM reactions x
    WHERE NOT EXISTS (SELECT 1 FROM retracted r WHERE r.site_id = x.site_id
                      AND r.record_type = 'reaction' AND r.ref = x.reaction_ref)
),
per_infusion AS (
    SELECT i.site_id, i.patient_key, i.cycle, i.tumor_type, i.regimen_class,
           count(r.reaction_ref) > 0 AS has_reaction,
           coalesce(max(r.grade) >= 3, false) AS grade3plus
    FROM live_infusions i
    LEFT JOIN live_reactions r ON r.site_id = i.site_id AND r.infusion_ref = i.infusion_ref
    GROUP BY i.site_id, i.infusion_ref, i.patient_key, i.cycle, i.tumor_type, i.regimen_class
),
grouped AS (
    SELECT
        CASE WHEN grouping(cycle) = 0 THEN 'cycle'
             WHEN grouping(tumor_type) = 0 THEN 'tumor_type' ELSE 'regimen_class' END AS dimension,
        cycle, tumor_type, regimen_class,
        count(*) AS infusions,
        count(*) FILTER (WHERE has_reaction) AS reaction_infusions,
        count(*) FILTER (WHERE grade3plus) AS grade3plus_infusions,
        count(DISTINCT (site_id, patient_key)) AS patients
    FROM per_infusion
    GROUP BY GROUPING SETS ((cycle), (tumor_type), (regimen_class))
)
SELECT dimension, cycle, tumor_type, regimen_class, infusions, reaction_infusions,
       CASE WHEN infusions > 0 THEN reaction_infusions::DOUBLE / infusions END AS reaction_rate,
       {wl('reaction_infusions', 'infusions')} AS ci_low,
       {wh('reaction_infusions', 'infusions')} AS ci_high,
       grade3plus_infusions,
       CASE WHEN infusions > 0 THEN grade3plus_infusions::DOUBLE / infusions END AS grade3plus_rate,
       {wl('grade3plus_infusions', 'infusions')} AS grade3plus_ci_low,
       {wh('grade3plus_infusions', 'infusions')} AS grade3plus_ci_high,
       patients
FROM grouped
"""


def compute(home: Path) -> dict:
    """The three marts as pandas DataFrames, keyed by mart name (one query, then split)."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        df = con.execute(query(Path(home) / "events")).df()
    finally:
        con.close()
    out = {}
    for mart, key in MARTS.items():
        part = df[df["dimension"] == key].drop(columns=["dimension"] + [k for k in MARTS.values() if k != key])
        out[mart] = part.sort_values(key).reset_index(drop=True)
    return out


def main(argv: list[str] | None = None) -> int:
    return reference_cli.main(__doc__.splitlines()[0], "limit", "in the query", compute, argv)


if __name__ == "__main__":
    raise SystemExit(main())
