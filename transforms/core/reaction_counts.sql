-- The infusion counts of marts-v1, once for every grouping the marts show.
-- Grain: dimension × value, dimension one of 'cycle', 'tumor_type', 'regimen_class',
-- 'site_id' (the other three columns NULL in that row).
--   infusions             current infusions in the group
--   reaction_infusions    of which with at least one current reaction
--   grade3plus_infusions  of which whose max grade is 3 or more
--   patients              distinct patients (site_id, patient_key) with an infusion in the group
-- Counts only: an incremental build updates them by difference over the patients in
-- scope (safety_ledger/build.py, BY_DIFFERENCE); core.reaction_rates adds the rates.
CREATE OR REPLACE TABLE core.reaction_counts AS
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
GROUP BY GROUPING SETS ((cycle), (tumor_type), (regimen_class), (site_id));
