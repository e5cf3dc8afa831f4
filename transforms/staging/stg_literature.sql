-- One row per literature event (every version of every publication).
CREATE OR REPLACE VIEW staging.stg_literature AS
SELECT
    publication_id,
    title,
    indication,
    study_type,
    key_finding,
    recorded_at,
    ingested_at,
    drop_id,
    event_id,
    batch_id
FROM raw.literature;
