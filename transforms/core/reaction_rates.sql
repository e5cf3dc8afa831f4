-- The infusion figures of marts-v1, once for every grouping the marts show.
-- Grain: dimension × value, dimension one of 'cycle', 'tumor_type', 'regimen_class',
-- 'site_id' (the other three columns NULL in that row).
--   infusions             current infusions in the group
--   reaction_infusions    of which with at least one current reaction
--   grade3plus_infusions  of which whose max grade is 3 or more
--   patients              distinct patients (site_id, patient_key) with an infusion in the group
-- Every rate with its 95% Wilson interval (NULL when infusions is 0).
CREATE OR REPLACE TABLE core.reaction_rates AS
WITH grouped AS (
    SELECT
        CASE
            WHEN grouping(cycle) = 0 THEN 'cycle'
            WHEN grouping(tumor_type) = 0 THEN 'tumor_type'
            WHEN grouping(regimen_class) = 0 THEN 'regimen_class'
            ELSE 'site_id'
        END AS dimension,
        cycle,
        tumor_type,
        regimen_class,
        site_id,
        count(*) AS infusions,
        count(*) FILTER (WHERE has_reaction) AS reaction_infusions,
        count(*) FILTER (WHERE grade3plus) AS grade3plus_infusions,
        count(DISTINCT (site_id, patient_key)) AS patients
    FROM core.infusion_outcomes
    GROUP BY GROUPING SETS ((cycle), (tumor_type), (regimen_class), (site_id))
)
SELECT
    dimension,
    cycle,
    tumor_type,
    regimen_class,
    site_id,
    infusions,
    reaction_infusions,
    rate(reaction_infusions, infusions) AS reaction_rate,
    wilson_low(reaction_infusions, infusions) AS ci_low,
    wilson_high(reaction_infusions, infusions) AS ci_high,
    grade3plus_infusions,
    rate(grade3plus_infusions, infusions) AS grade3plus_rate,
    wilson_low(grade3plus_infusions, infusions) AS grade3plus_ci_low,
    wilson_high(grade3plus_infusions, infusions) AS grade3plus_ci_high,
    patients
FROM grouped;
