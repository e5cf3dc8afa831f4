-- One row per infusion record key (site_id, infusion_ref): its current version, the
-- patient it hangs off, and whether it counts.  status, first rule that applies:
--   retracted                  the infusion itself was retracted
--   orphan                     no version of its patient was received at this site
--   parent_retracted           its patient was retracted (the retraction cascades)
--   started_before_first_dose  started_local_date < the patient's first_dose_date
--   current                    counts in every figure
-- The patient's current tumor_type is the infusion's tumor type.
-- Stored in patient order (site_id, patient_key): one patient's infusions then lie in a
-- few row groups, which is what makes the view core.patient_events fast for one patient.
-- (An incremental build appends the rows it recomputes; a full replay sorts them again.)
CREATE OR REPLACE TABLE core.infusion_status AS
SELECT
    i.*,
    coalesce(v.versions, 1) AS versions,
    p.tumor_type,
    p.first_dose_date,
    CASE
        WHEN r.ref IS NOT NULL THEN 'retracted'
        WHEN p.patient_key IS NULL THEN 'orphan'
        WHEN p.status <> 'current' THEN 'parent_retracted'
        WHEN i.started_local_date < p.first_dose_date THEN 'started_before_first_dose'
        ELSE 'current'
    END AS status
FROM staging.stg_infusions AS i
LEFT JOIN core.corrected_versions AS v
    ON v.record_type = 'infusion' AND v.event_id = i.event_id
LEFT JOIN core.retracted_records AS r
    ON r.record_type = 'infusion' AND r.site_id = i.site_id AND r.ref = i.infusion_ref
LEFT JOIN core.patient_status AS p
    ON p.site_id = i.site_id AND p.patient_key = i.patient_key
WHERE coalesce(v.version_rank, 1) = 1
ORDER BY i.site_id, i.patient_key;
