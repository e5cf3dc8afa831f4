-- One row per current infusion with what happened on it: its current reactions,
-- whether it had one, its max grade, and its rechallenge tier (infusion_outcome).
CREATE OR REPLACE TABLE core.infusion_outcomes AS
SELECT
    i.site_id,
    i.infusion_ref,
    i.patient_key,
    i.cycle,
    i.started_at,
    i.started_local_date,
    i.tumor_type,
    i.regimen_class,
    i.protocol,
    i.premedicated,
    i.completed,
    count(r.reaction_ref) AS reactions,
    count(r.reaction_ref) > 0 AS has_reaction,
    max(r.grade) AS max_grade,
    coalesce(max(r.grade) >= 3, false) AS grade3plus,
    infusion_outcome(i.completed, count(r.reaction_ref), max(r.grade)) AS outcome
FROM core.current_infusions AS i
LEFT JOIN core.current_reactions AS r
    ON r.site_id = i.site_id AND r.infusion_ref = i.infusion_ref
GROUP BY
    i.site_id, i.infusion_ref, i.patient_key, i.cycle, i.started_at, i.started_local_date,
    i.tumor_type, i.regimen_class, i.protocol, i.premedicated, i.completed;
