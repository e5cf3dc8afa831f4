-- One row per patient record key (site_id, patient_key): its current version and
-- whether it counts.  status: 'current' or 'retracted'.
CREATE OR REPLACE TABLE core.patient_status AS
SELECT
    p.*,
    coalesce(v.versions, 1) AS versions,
    CASE WHEN r.ref IS NOT NULL THEN 'retracted' ELSE 'current' END AS status
FROM staging.stg_patients AS p
LEFT JOIN core.corrected_versions AS v
    ON v.record_type = 'patient' AND v.event_id = p.event_id
LEFT JOIN core.retracted_records AS r
    ON r.record_type = 'patient' AND r.site_id = p.site_id AND r.ref = p.patient_key
WHERE coalesce(v.version_rank, 1) = 1;
