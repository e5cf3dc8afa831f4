-- marts-v1: one row per regimen_class with at least one current infusion.
CREATE OR REPLACE TABLE marts.reaction_rate_by_regimen AS
SELECT
    regimen_class,
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
WHERE dimension = 'regimen_class'
ORDER BY regimen_class;
