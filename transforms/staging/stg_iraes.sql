-- One row per irAE event, with its month (first day of the calendar month of onset).
CREATE OR REPLACE VIEW staging.stg_iraes AS
SELECT
    site_id,
    irae_ref,
    patient_key,
    onset_date,
    date_trunc('month', onset_date)::DATE AS onset_month,
    category,
    grade,
    treatment,
    outcome,
    recorded_at,
    ingested_at,
    event_id,
    batch_id,
    submission_id
FROM raw.iraes;
