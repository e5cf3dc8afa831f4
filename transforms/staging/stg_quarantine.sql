-- One row per quarantined row of a committed batch.
CREATE OR REPLACE VIEW staging.stg_quarantine AS
SELECT
    batch_id,
    site_id,
    submission_id,
    source_file,
    source_row,
    rules,
    reason,
    ingested_at
FROM raw.quarantine;
