-- One row per irAE record key (site_id, irae_ref): its current version and whether it
-- counts.  status, first rule that applies:
--   retracted                the irAE itself was retracted
--   orphan                   no version of its patient was received at this site
--   parent_retracted         its patient was retracted
--   onset_before_first_dose  onset_date < the patient's first_dose_date
--   current                  counts in every figure
CREATE OR REPLACE TABLE core.irae_status AS
SELECT
    e.*,
    coalesce(v.versions, 1) AS versions,
    p.first_dose_date,
    CASE
        WHEN r.ref IS NOT NULL THEN 'retracted'
        WHEN p.patient_key IS NULL THEN 'orphan'
        WHEN p.status <> 'current' THEN 'parent_retracted'
        WHEN e.onset_date < p.first_dose_date THEN 'onset_before_first_dose'
        ELSE 'current'
    END AS status
FROM staging.stg_iraes AS e
LEFT JOIN core.corrected_versions AS v
    ON v.record_type = 'irae' AND v.event_id = e.event_id
LEFT JOIN core.retracted_records AS r
    ON r.record_type = 'irae' AND r.site_id = e.site_id AND r.ref = e.irae_ref
LEFT JOIN core.patient_status AS p
    ON p.site_id = e.site_id AND p.patient_key = e.patient_key
WHERE coalesce(v.version_rank, 1) = 1;
