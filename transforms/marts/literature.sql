-- marts-v1: one row per publication_id, its latest version (latest recorded_at, then
-- ingested_at, then event_id); first_ingested_at = when the pipeline first had it.
CREATE OR REPLACE TABLE marts.literature AS
SELECT
    publication_id,
    title,
    indication,
    study_type,
    key_finding,
    min(ingested_at) OVER (PARTITION BY publication_id) AS first_ingested_at,
    recorded_at,
    ingested_at AS last_ingested_at,
    count(*) OVER (PARTITION BY publication_id) AS versions
FROM staging.stg_literature
QUALIFY row_number() OVER (
    PARTITION BY publication_id ORDER BY recorded_at DESC, ingested_at DESC, event_id DESC
) = 1
ORDER BY publication_id;
