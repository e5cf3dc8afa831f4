-- One row per (cycle, tumor_type) stratum: the reaction rate pooled over all sites,
-- the yardstick of each site's expected_reaction_infusions.
CREATE OR REPLACE TABLE core.stratum_reaction_rates AS
SELECT
    cycle,
    tumor_type,
    count(*) AS infusions,
    count(*) FILTER (WHERE has_reaction) AS reaction_infusions,
    rate(count(*) FILTER (WHERE has_reaction), count(*)) AS pooled_reaction_rate
FROM core.infusion_outcomes
GROUP BY cycle, tumor_type;
