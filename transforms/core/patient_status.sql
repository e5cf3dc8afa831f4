-- One row per patient record key (site_id, patient_key): its current version and
-- whether it counts.  status: 'current' or 'retracted'.
CREATE OR REPLACE TABLE core.patient_status AS
SELECT
    p.*,
    v.versions,
    CASE WHEN v.retracted THEN 'retracted' ELSE 'current' END AS status
FROM staging.stg_patients AS p
JOIN core.record_versions AS v
    ON v.record_type = 'patient' AND v.event_id = p.event_id AND v.version_rank = 1;
