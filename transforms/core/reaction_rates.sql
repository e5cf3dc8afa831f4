-- The infusion figures of marts-v1, once for every grouping the marts show: the counts
-- of core.reaction_counts (same grain: dimension × value) and every rate with its 95%
-- Wilson interval (NULL when infusions is 0).
CREATE OR REPLACE TABLE core.reaction_rates AS
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
FROM core.reaction_counts;
