-- marts-v1: one row per site, with the observed/expected comparison and its funnel.
-- Sites: every site with an accepted submission in the ledger (a site with no
-- current infusion has infusions 0 and NULL rates), plus any site with infusions.
--   expected_reaction_infusions  sum over the site's current infusions of the pooled
--                                reaction rate of their (cycle, tumor_type) stratum
--   observed_to_expected         reaction_infusions / expected (NULL when expected is 0)
--   funnel_low, funnel_high      0.001 and 0.999 quantiles of Binomial(n = infusions,
--                                p = expected / infusions): the exact 99.8% limits
--   outside_funnel               reaction_infusions < funnel_low or > funnel_high
-- binom_quantile is the Python UDF registered by build.py (scipy.stats.binom.ppf).
CREATE OR REPLACE TABLE marts.reaction_rate_by_site AS
WITH sites AS (
    SELECT site_id FROM staging.stg_submissions WHERE status = 'accepted'
    UNION
    SELECT site_id FROM core.reaction_rates WHERE dimension = 'site_id'
),
-- per site and stratum: the site's infusions there times the stratum's pooled rate;
-- summed in a fixed order so that the same events always give the same bits
site_strata AS (
    SELECT o.site_id, cycle, tumor_type, count(*) * any_value(s.pooled_reaction_rate) AS expected
    FROM core.infusion_outcomes AS o
    JOIN core.stratum_reaction_rates AS s USING (cycle, tumor_type)
    GROUP BY o.site_id, cycle, tumor_type
),
expected AS (
    SELECT site_id, sum(expected ORDER BY cycle, tumor_type) AS expected_reaction_infusions
    FROM site_strata
    GROUP BY site_id
),
figures AS (
    SELECT
        sites.site_id,
        coalesce(r.infusions, 0) AS infusions,
        coalesce(r.reaction_infusions, 0) AS reaction_infusions,
        r.reaction_rate,
        r.ci_low,
        r.ci_high,
        coalesce(r.grade3plus_infusions, 0) AS grade3plus_infusions,
        r.grade3plus_rate,
        r.grade3plus_ci_low,
        r.grade3plus_ci_high,
        coalesce(r.patients, 0) AS patients,
        coalesce(e.expected_reaction_infusions, 0.0) AS expected_reaction_infusions
    FROM sites
    LEFT JOIN core.reaction_rates AS r
        ON r.dimension = 'site_id' AND r.site_id = sites.site_id
    LEFT JOIN expected AS e
        ON e.site_id = sites.site_id
),
funnel AS (
    SELECT
        *,
        CASE WHEN expected_reaction_infusions > 0
             THEN reaction_infusions / expected_reaction_infusions END AS observed_to_expected,
        CASE WHEN infusions > 0
             THEN binom_quantile(0.001, infusions, expected_reaction_infusions / infusions) END AS funnel_low,
        CASE WHEN infusions > 0
             THEN binom_quantile(0.999, infusions, expected_reaction_infusions / infusions) END AS funnel_high
    FROM figures
)
SELECT
    site_id,
    infusions,
    reaction_infusions,
    reaction_rate,
    ci_low,
    ci_high,
    grade3plus_infusions,
    grade3plus_rate,
    grade3plus_ci_low,
    grade3plus_ci_high,
    patients,
    expected_reaction_infusions,
    observed_to_expected,
    funnel_low,
    funnel_high,
    reaction_infusions < funnel_low OR reaction_infusions > funnel_high AS outside_funnel
FROM funnel
ORDER BY site_id;
