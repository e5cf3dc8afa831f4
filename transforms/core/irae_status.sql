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
    v.versions,
    p.first_dose_date,
    CASE
        WHEN v.retracted THEN 'retracted'
        WHEN p.patient_key IS NULL THEN 'orphan'
        WHEN p.status <> 'current' THEN 'parent_retracted'
        WHEN e.onset_date < p.first_dose_date THEN 'onset_before_first_dose'
        ELSE 'current'
    END AS status
FROM staging.stg_iraes AS e
JOIN core.record_versions AS v
    ON v.record_type = 'irae' AND v.event_id = e.event_id AND v.version_rank = 1
LEFT JOIN core.patient_status AS p
    ON p.site_id = e.site_id AND p.patient_key = e.patient_key;
