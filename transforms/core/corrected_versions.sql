-- One row per version (event) of a corrected record: a patient, infusion, reaction or
-- irAE whose record key (site_id, record_type, ref) came in more than once, ref being
-- patient_key / infusion_ref / reaction_ref / irae_ref.  version_rank 1 is the current
-- version: the latest recorded_at, then the latest ingested_at, then the greatest
-- event_id; versions = how many came in.
-- A record that came in once has no row here: its one version is the current one (the
-- *_status models read it so: no row, or version_rank 1).  Most records come in once
-- (at 10m events: 400,000 rows here for 10.2 million versions), so only corrections are
-- ranked, and no model carries a row for every version.
CREATE OR REPLACE TABLE core.corrected_versions AS
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
),
corrected AS (
    SELECT record_type, site_id, ref
    FROM versions
    GROUP BY record_type, site_id, ref
    HAVING count(*) > 1
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
    count(*) OVER (PARTITION BY v.record_type, v.site_id, v.ref) AS versions
FROM versions AS v
SEMI JOIN corrected AS c USING (record_type, site_id, ref);
