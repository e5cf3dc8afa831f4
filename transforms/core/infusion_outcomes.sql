-- One row per current infusion with what happened on it: its current reactions,
-- whether it had one, its max grade, and its rechallenge tier (infusion_outcome).
-- The reactions are counted per infusion first (a few per hundred infusions), then
-- joined on: grouping the infusions themselves would hash every infusion's columns.
CREATE OR REPLACE TABLE core.infusion_outcomes AS
WITH infusion_reactions AS (
    SELECT site_id, infusion_ref, count(*) AS reactions, max(grade) AS max_grade
    FROM core.current_reactions
    GROUP BY site_id, infusion_ref
)
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
    coalesce(r.reactions, 0) AS reactions,
    coalesce(r.reactions, 0) > 0 AS has_reaction,
    r.max_grade,
    coalesce(r.max_grade >= 3, false) AS grade3plus,
    infusion_outcome(i.completed, coalesce(r.reactions, 0), r.max_grade) AS outcome
FROM core.current_infusions AS i
LEFT JOIN infusion_reactions AS r
    ON r.site_id = i.site_id AND r.infusion_ref = i.infusion_ref;
