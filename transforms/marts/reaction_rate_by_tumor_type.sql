-- marts-v1: one row per tumor_type with at least one current infusion.
CREATE OR REPLACE TABLE marts.reaction_rate_by_tumor_type AS
SELECT
    tumor_type,
    infusions,
    reaction_infusions,
    reaction_rate,
    ci_low,
    ci_high,
    grade3plus_infusions,
    grade3plus_rate,
    grade3plus_ci_low,
    grade3plus_ci_high,
    patients
FROM core.reaction_rates
WHERE dimension = 'tumor_type'
ORDER BY tumor_type;
