-- One row per infusion event, with the regimen class and premedication flag derived once.
CREATE OR REPLACE VIEW staging.stg_infusions AS
SELECT
    site_id,
    infusion_ref,
    patient_key,
    cycle,
    started_at,
    started_local_date,
    dose_mg,
    planned_duration_min,
    protocol,
    combination,
    regimen_class(combination) AS regimen_class,
    premedication,
    len(coalesce(premedication, []::VARCHAR[])) > 0 AS premedicated,
    completed,
    recorded_at,
    ingested_at,
    event_id,
    batch_id,
    submission_id
FROM raw.infusions;
