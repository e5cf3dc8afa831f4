-- One row per reaction event.
CREATE OR REPLACE VIEW staging.stg_reactions AS
SELECT
    site_id,
    reaction_ref,
    infusion_ref,
    onset_min,
    term,
    grade,
    symptoms,
    treatment,
    outcome,
    recorded_at,
    ingested_at,
    event_id,
    batch_id,
    submission_id
FROM raw.reactions;
