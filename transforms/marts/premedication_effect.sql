-- Reaction rate with and without premedication, stratified by cycle, and the
-- Mantel-Haenszel risk ratio (premedicated vs not) over the cycle strata.
-- Grain: one row per cycle with current infusions (stratum 'cycle <n>'), plus one row
-- `stratum = 'all cycles'` (cycle NULL) that carries the Mantel-Haenszel estimate.
-- Per cycle k, a 2x2 table over current infusions (premedicated = the infusion's
-- premedication list is not empty):
--     a = premedicated with a reaction,     n1 = premedicated infusions,
--     c = not premedicated with a reaction, n0 = not premedicated infusions,  N = n1 + n0.
--   RR_MH   = sum_k(a n0 / N) / sum_k(c n1 / N)
--   Var(ln RR_MH) (Greenland S, Robins JM (1985). Estimation of a common effect parameter
--   from sparse follow-up data. Biometrics 41:55-68):
--           = sum_k((n1 n0 (a + c) - a c N) / N^2) / (sum_k(a n0 / N) * sum_k(c n1 / N))
--   95% CI  = exp(ln RR_MH -/+ 1.959964 sqrt(Var))
-- On a cycle's own row the same formulas with one stratum give that cycle's risk ratio
-- (a / n1) / (c / n0) and its usual (Katz) log interval.  A cycle where one arm has no
-- infusion adds 0 to every sum.  risk_ratio is NULL when its denominator sum is 0; the
-- interval is NULL when the risk ratio is NULL or 0.  crude_risk_ratio: the unstratified
-- (sum a / sum n1) / (sum c / sum n0).  Every rate has its 95% Wilson interval (marts-v1).
-- With no current infusion the table has only the 'all cycles' row, with 0 infusions.
CREATE OR REPLACE TABLE marts.premedication_effect AS
WITH cells AS (
    SELECT
        cycle,
        count(*) FILTER (WHERE premedicated) AS n1,
        count(*) FILTER (WHERE premedicated AND has_reaction) AS a,
        count(*) FILTER (WHERE NOT premedicated) AS n0,
        count(*) FILTER (WHERE NOT premedicated AND has_reaction) AS c
    FROM core.infusion_outcomes
    GROUP BY cycle
),
terms AS (
    SELECT
        *,
        a * n0 / (n1 + n0)::DOUBLE AS r,
        c * n1 / (n1 + n0)::DOUBLE AS s,
        (n1 * n0 * (a + c) - a * c * (n1 + n0)) / ((n1 + n0)::DOUBLE ^ 2) AS v,
        n1 > 0 AND n0 > 0 AS informative
    FROM cells
),
summed AS (
    SELECT
        grouping(cycle) = 1 AS pooled,
        cycle,
        coalesce(sum(n1), 0) AS n1,
        coalesce(sum(a), 0) AS a,
        coalesce(sum(n0), 0) AS n0,
        coalesce(sum(c), 0) AS c,
        sum(r ORDER BY cycle) AS r,
        sum(s ORDER BY cycle) AS s,
        sum(v ORDER BY cycle) AS v,
        count(*) FILTER (WHERE informative) AS informative_strata
    FROM terms
    GROUP BY GROUPING SETS ((cycle), ())
),
estimated AS (
    SELECT
        *,
        CASE WHEN s > 0 THEN r / s END AS risk_ratio,
        CASE WHEN r > 0 AND s > 0 THEN v / (r * s) END AS var_log_rr
    FROM summed
)
SELECT
    CASE WHEN pooled THEN 'all cycles' ELSE 'cycle ' || cycle END AS stratum,
    cycle,
    (n1 + n0)::BIGINT AS infusions,
    n1::BIGINT AS premedicated_infusions,
    a::BIGINT AS premedicated_reaction_infusions,
    rate(a, n1) AS premedicated_rate,
    wilson_low(a, n1) AS premedicated_ci_low,
    wilson_high(a, n1) AS premedicated_ci_high,
    n0::BIGINT AS not_premedicated_infusions,
    c::BIGINT AS not_premedicated_reaction_infusions,
    rate(c, n0) AS not_premedicated_rate,
    wilson_low(c, n0) AS not_premedicated_ci_low,
    wilson_high(c, n0) AS not_premedicated_ci_high,
    CASE WHEN pooled THEN 'Mantel-Haenszel over cycles' ELSE 'this cycle' END AS estimate,
    risk_ratio,
    CASE WHEN var_log_rr IS NOT NULL
         THEN exp(ln(risk_ratio) - wilson_z() * sqrt(var_log_rr)) END AS rr_ci_low,
    CASE WHEN var_log_rr IS NOT NULL
         THEN exp(ln(risk_ratio) + wilson_z() * sqrt(var_log_rr)) END AS rr_ci_high,
    var_log_rr,
    CASE WHEN n1 > 0 AND n0 > 0 AND c > 0 THEN (a / n1::DOUBLE) / (c / n0::DOUBLE) END
        AS crude_risk_ratio,
    informative_strata
FROM estimated
ORDER BY pooled, cycle;
