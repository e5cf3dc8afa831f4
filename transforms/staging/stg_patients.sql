-- One row per patient event (every version of every patient record).
CREATE OR REPLACE VIEW staging.stg_patients AS
SELECT
    site_id,
    patient_key,
    sex,
    age_at_first_dose,
    tumor_type,
    weight_kg,
    first_dose_date,
    recorded_at,
    ingested_at,
    event_id,
    batch_id,
    submission_id
FROM raw.patients;
