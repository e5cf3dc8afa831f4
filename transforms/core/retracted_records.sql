-- One row per retracted record key (site_id, record_type, ref).
-- A retraction removes its record from every current figure, whatever the order of
-- the retraction's and the record's recorded_at: it applies to every version, earlier
-- or later, and even to a record that arrives after it.  v1 has no "un-retraction".
-- reason: the first retraction's, by recorded_at, then ingested_at, then event_id (two
-- retractions recorded at the same time must not leave the choice to the scan order).
CREATE OR REPLACE TABLE core.retracted_records AS
SELECT
    site_id,
    record_type,
    ref,
    count(*) AS retractions,
    min(recorded_at) AS first_retracted_at,
    arg_min(reason, (recorded_at, ingested_at, event_id)) AS reason
FROM staging.stg_retractions
GROUP BY site_id, record_type, ref;
