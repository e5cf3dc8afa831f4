-- marts-v1: one row per (site_id, submission_id), from its latest ledger row (latest
-- ingested_at, then batch_id).  ledger_rows counts every ledger row of the pair
-- (a re-ingested or re-sent submission adds one); first_ingested_at is the earliest.
CREATE OR REPLACE TABLE marts.submissions AS
SELECT
    site_id,
    submission_id,
    exported_at,
    ingested_at,
    status,
    reason,
    "rows",
    events,
    duplicates,
    quarantined,
    rule,
    batch_id,
    min(ingested_at) OVER (PARTITION BY site_id, submission_id) AS first_ingested_at,
    count(*) OVER (PARTITION BY site_id, submission_id) AS ledger_rows
FROM staging.stg_submissions
QUALIFY row_number() OVER (
    PARTITION BY site_id, submission_id ORDER BY ingested_at DESC, batch_id DESC
) = 1
ORDER BY site_id, submission_id;
