-- One row per current patient with an index reaction.
--   index infusion: the patient's earliest current infusion (by started_at; ties by
--     cycle, then infusion_ref) that has a current reaction; index_max_grade is the
--     highest grade among its reactions, index_grade_band '3+' or '1-2'.
--   rechallenge: the patient's first current infusion whose started_at is strictly
--     after the index infusion's (same tie rule); none = not rechallenged.
--   tumor_type: the patient's (as on every row of core.infusion_outcomes), so that the
--     dashboard's patient lists need no join with core.current_patients.
CREATE OR REPLACE TABLE core.patient_rechallenge AS
WITH index_infusion AS (
    SELECT *
    FROM core.infusion_outcomes
    WHERE has_reaction
    QUALIFY row_number() OVER (
        PARTITION BY site_id, patient_key ORDER BY started_at, cycle, infusion_ref
    ) = 1
),
rechallenge AS (
    SELECT x.site_id, x.patient_key, o.*
        EXCLUDE (site_id, patient_key)
    FROM index_infusion AS x
    JOIN core.infusion_outcomes AS o
        ON o.site_id = x.site_id AND o.patient_key = x.patient_key
       AND o.started_at > x.started_at
    QUALIFY row_number() OVER (
        PARTITION BY x.site_id, x.patient_key ORDER BY o.started_at, o.cycle, o.infusion_ref
    ) = 1
)
SELECT
    x.site_id,
    x.patient_key,
    x.tumor_type,
    x.infusion_ref AS index_infusion_ref,
    x.cycle AS index_cycle,
    x.started_at AS index_started_at,
    x.max_grade AS index_max_grade,
    grade_band(x.max_grade) AS index_grade_band,
    r.infusion_ref IS NOT NULL AS rechallenged,
    r.infusion_ref AS rechallenge_infusion_ref,
    r.cycle AS rechallenge_cycle,
    r.started_at AS rechallenge_started_at,
    r.protocol,
    r.premedicated,
    r.completed AS rechallenge_completed,
    r.max_grade AS rechallenge_max_grade,
    r.outcome AS rechallenge_outcome
FROM index_infusion AS x
LEFT JOIN rechallenge AS r
    ON r.site_id = x.site_id AND r.patient_key = x.patient_key;
