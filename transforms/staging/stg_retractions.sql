-- One row per retraction event.  For record_type 'patient', ref is the pseudonymized
-- patient_key; for the others it is the site's infusion_ref / reaction_ref / irae_ref.
CREATE OR REPLACE VIEW staging.stg_retractions AS
SELECT
    site_id,
    record_type,
    ref,
    reason,
    recorded_at,
    ingested_at,
    event_id,
    batch_id,
    submission_id
FROM raw.retractions;
