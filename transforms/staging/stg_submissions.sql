-- One row per ledger row (one ingested batch, accepted or rejected).
CREATE OR REPLACE VIEW staging.stg_submissions AS
SELECT
    batch_id,
    site_id,
    submission_id,
    exported_at,
    ingested_at,
    status,
    reason,
    rule,
    "rows",
    events,
    duplicates,
    quarantined
FROM raw.submissions;
