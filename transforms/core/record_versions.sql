-- One row per version (event) of a patient, infusion, reaction or irAE record.
-- Record key = (site_id, record_type, ref), ref being patient_key / infusion_ref /
-- reaction_ref / irae_ref.  version_rank 1 is the current version: the latest
-- recorded_at, then the latest ingested_at, then the greatest event_id.
CREATE OR REPLACE TABLE core.record_versions AS
WITH versions AS (
    SELECT 'patient' AS record_type, site_id, patient_key AS ref, event_id, recorded_at, ingested_at
    FROM staging.stg_patients
    UNION ALL
    SELECT 'infusion', site_id, infusion_ref, event_id, recorded_at, ingested_at
    FROM staging.stg_infusions
    UNION ALL
    SELECT 'reaction', site_id, reaction_ref, event_id, recorded_at, ingested_at
    FROM staging.stg_reactions
    UNION ALL
    SELECT 'irae', site_id, irae_ref, event_id, recorded_at, ingested_at
    FROM staging.stg_iraes
)
SELECT
    v.record_type,
    v.site_id,
    v.ref,
    v.event_id,
    v.recorded_at,
    v.ingested_at,
    row_number() OVER (
        PARTITION BY v.record_type, v.site_id, v.ref
        ORDER BY v.recorded_at DESC, v.ingested_at DESC, v.event_id DESC
    ) AS version_rank,
    count(*) OVER (PARTITION BY v.record_type, v.site_id, v.ref) AS versions,
    r.ref IS NOT NULL AS retracted
FROM versions AS v
LEFT JOIN core.retracted_records AS r
    ON r.site_id = v.site_id AND r.record_type = v.record_type AND r.ref = v.ref;
