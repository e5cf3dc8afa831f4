-- marts-v1: one row per cycle with at least one current infusion.
CREATE OR REPLACE TABLE marts.reaction_rate_by_cycle AS
SELECT
    cycle,
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
WHERE dimension = 'cycle'
ORDER BY cycle;
