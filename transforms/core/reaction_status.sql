-- One row per reaction record key (site_id, reaction_ref): its current version and
-- whether it counts.  status, first rule that applies:
--   retracted         the reaction itself was retracted
--   orphan            no version of its infusion was received at this site
--   parent_retracted  its infusion was retracted, or that infusion's patient was
--   parent_excluded   its infusion is left out by a data issue (orphan, date rule)
--   current           counts in every figure
-- infusion_status and patient_key are those of its infusion (NULL for an orphan): a
-- current reaction's infusion is current, so its patient_key is the reaction's patient.
CREATE OR REPLACE TABLE core.reaction_status AS
SELECT
    r.*,
    coalesce(v.versions, 1) AS versions,
    i.status AS infusion_status,
    i.patient_key,
    CASE
        WHEN x.ref IS NOT NULL THEN 'retracted'
        WHEN i.infusion_ref IS NULL THEN 'orphan'
        WHEN i.status IN ('retracted', 'parent_retracted') THEN 'parent_retracted'
        WHEN i.status <> 'current' THEN 'parent_excluded'
        ELSE 'current'
    END AS status
FROM staging.stg_reactions AS r
LEFT JOIN core.corrected_versions AS v
    ON v.record_type = 'reaction' AND v.event_id = r.event_id
LEFT JOIN core.retracted_records AS x
    ON x.record_type = 'reaction' AND x.site_id = r.site_id AND x.ref = r.reaction_ref
LEFT JOIN core.infusion_status AS i
    ON i.site_id = r.site_id AND i.infusion_ref = r.infusion_ref
WHERE coalesce(v.version_rank, 1) = 1;
