-- One row per event of a current patient's history, current records only: each current
-- infusion, each current reaction (on a current infusion) and each current irAE, with the
-- patient's attributes and the rechallenge roles.  marts.patient_timeline numbers them
-- (event_order).
-- A view: the Case timeline reads one patient at a time, and the patient's filter reaches
-- every table below it.  core.infusion_status is stored in patient order, so that filter
-- reads a few of its row groups (at 10m events: one patient in 40-50 ms, against 60-85 ms
-- from a stored table of the 8.6 million events, which took 14-16 s to write).
--   role of an infusion: 'index' (the infusion of the patient's index reaction,
--     core.patient_rechallenge), 'rechallenge' (the first infusion after it), else NULL;
--     rechallenge_tier (tolerated / breakthrough / failed) on the rechallenge infusion's
--     rows and index_grade_band on the index infusion's rows: a reaction carries the
--     role, band and tier of its infusion.
-- patient_key is the pseudonym: no raw patient_ref is ever in the warehouse.
CREATE OR REPLACE VIEW core.patient_events AS
WITH infusion_events AS (
    SELECT
        i.site_id, i.patient_key, 'infusion' AS event_type,
        i.started_local_date AS event_date,
        i.infusion_ref, i.cycle, i.started_at, i.dose_mg, i.planned_duration_min, i.protocol,
        i.combination, i.regimen_class, i.premedication, i.premedicated, i.completed,
        NULL::VARCHAR AS reaction_ref, NULL::INTEGER AS onset_min, NULL::VARCHAR AS term,
        NULL::INTEGER AS grade, NULL::VARCHAR[] AS symptoms, NULL::VARCHAR[] AS treatment,
        NULL::VARCHAR AS outcome, NULL::VARCHAR AS irae_ref, NULL::VARCHAR AS category,
        NULL::DATE AS onset_date
    FROM core.current_infusions AS i
),
reaction_events AS (
    SELECT
        i.site_id, i.patient_key, 'reaction' AS event_type,
        i.started_local_date AS event_date,
        i.infusion_ref, i.cycle, i.started_at, i.dose_mg, i.planned_duration_min, i.protocol,
        i.combination, i.regimen_class, i.premedication, i.premedicated, i.completed,
        r.reaction_ref, r.onset_min::INTEGER AS onset_min, r.term, r.grade::INTEGER AS grade,
        r.symptoms, r.treatment, r.outcome, NULL::VARCHAR AS irae_ref,
        NULL::VARCHAR AS category, NULL::DATE AS onset_date
    FROM core.current_reactions AS r
    JOIN core.current_infusions AS i
        ON i.site_id = r.site_id AND i.infusion_ref = r.infusion_ref
),
irae_events AS (
    SELECT
        e.site_id, e.patient_key, 'irae' AS event_type,
        e.onset_date AS event_date,
        NULL::VARCHAR AS infusion_ref, NULL::INTEGER AS cycle, NULL::TIMESTAMPTZ AS started_at,
        NULL::DOUBLE AS dose_mg, NULL::INTEGER AS planned_duration_min,
        NULL::VARCHAR AS protocol, NULL::VARCHAR[] AS combination,
        NULL::VARCHAR AS regimen_class, NULL::VARCHAR[] AS premedication,
        NULL::BOOLEAN AS premedicated, NULL::BOOLEAN AS completed,
        NULL::VARCHAR AS reaction_ref, NULL::INTEGER AS onset_min, NULL::VARCHAR AS term,
        e.grade::INTEGER AS grade, NULL::VARCHAR[] AS symptoms, e.treatment, e.outcome,
        e.irae_ref, e.category, e.onset_date
    FROM core.current_iraes AS e
),
events AS (
    SELECT * FROM infusion_events
    UNION ALL BY NAME SELECT * FROM reaction_events
    UNION ALL BY NAME SELECT * FROM irae_events
)
SELECT
    e.site_id,
    e.patient_key,
    p.sex,
    p.age_at_first_dose,
    p.tumor_type,
    p.first_dose_date,
    e.event_type,
    e.event_date,
    e.infusion_ref,
    e.cycle,
    e.started_at,
    e.dose_mg,
    e.planned_duration_min,
    e.protocol,
    e.combination,
    e.regimen_class,
    e.premedication,
    e.premedicated,
    e.completed,
    e.reaction_ref,
    e.onset_min,
    e.term,
    e.grade,
    e.symptoms,
    e.treatment,
    e.outcome,
    e.irae_ref,
    e.category,
    CASE WHEN e.infusion_ref = x.index_infusion_ref THEN 'index'
         WHEN e.infusion_ref = x.rechallenge_infusion_ref THEN 'rechallenge' END AS role,
    CASE WHEN e.infusion_ref = x.index_infusion_ref THEN x.index_grade_band END
        AS index_grade_band,
    CASE WHEN e.infusion_ref = x.rechallenge_infusion_ref THEN x.rechallenge_outcome END
        AS rechallenge_tier
FROM events AS e
JOIN core.current_patients AS p
    ON p.site_id = e.site_id AND p.patient_key = e.patient_key
LEFT JOIN core.patient_rechallenge AS x
    ON x.site_id = e.site_id AND x.patient_key = e.patient_key;
