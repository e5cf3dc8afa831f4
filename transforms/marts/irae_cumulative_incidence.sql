-- Cumulative incidence of each irAE category over days since the first dose:
-- one row per (category, day on which at least one cohort patient had the event or was
-- censored), of the follow-up core.irae_followup defines (cohort, day 0, events and
-- censoring), counted without listing it:
--   events on day t     first irAEs of the category with is_event and onset_day t
--                       (core.irae_first_onsets)
--   censored on day t   cohort patients with censor_day t (core.irae_cohort), less those
--                       of them with an event in the category (they leave by their event)
--
-- Kaplan-Meier product-limit estimator, with Greenwood's variance:
--   Kaplan EL, Meier P. Nonparametric estimation from incomplete observations.
--     J Am Stat Assoc 1958;53:457-481.
--   Greenwood M. The natural duration of cancer. Reports on Public Health and Medical
--     Subjects 33. London: HMSO; 1926.
--
--   at_risk (n_t)     patients whose day >= t (those censored on day t are at risk on t:
--                     on a tie, events come before censoring)
--   events (d_t)      patients whose first irAE of the category is on day t
--   censored          patients censored on day t (last infusion on day t, no event by then)
--   survival          S(t) = product over event days u <= t of (1 - d_u / n_u)
--   cumulative_incidence  1 - S(t): the estimated share of patients with a first irAE of
--                     the category by day t, had none been censored
--   greenwood_se      SE of S(t) = S(t) * sqrt(sum over u <= t of d_u / (n_u (n_u - d_u)))
--                     (also the SE of 1 - S(t)); NULL from the first day with d_u = n_u
--                     (S(t) = 0: the variance is undefined)
--   ci_low, ci_high   95% interval of the cumulative incidence: 1 - S(t) -/+ z * SE,
--                     z = 1.959964, clipped to [0, 1] (plain, "linear" Greenwood interval);
--                     NULL when greenwood_se is NULL
-- Ordered windows (ORDER BY day): the same events give the same bits.
CREATE OR REPLACE TABLE marts.irae_cumulative_incidence AS
WITH event_days AS (
    SELECT category, onset_day AS day, count(*) AS events
    FROM core.irae_first_onsets
    WHERE is_event
    GROUP BY category, onset_day
),
last_infusion_days AS (
    SELECT censor_day AS day, count(*) AS patients
    FROM core.irae_cohort
    GROUP BY censor_day
),
left_by_event AS (
    SELECT category, censor_day AS day, count(*) AS patients
    FROM core.irae_first_onsets
    WHERE is_event
    GROUP BY category, censor_day
),
censor_days AS (
    SELECT c.category, l.day, l.patients - coalesce(e.patients, 0) AS censored
    FROM core.irae_categories AS c
    CROSS JOIN last_infusion_days AS l
    LEFT JOIN left_by_event AS e ON e.category = c.category AND e.day = l.day
),
per_day AS (
    SELECT
        category,
        day,
        coalesce(e.events, 0) AS events,
        coalesce(c.censored, 0) AS censored,
        coalesce(e.events, 0) + coalesce(c.censored, 0) AS leaving
    FROM event_days AS e
    FULL JOIN censor_days AS c USING (category, day)
    WHERE coalesce(e.events, 0) + coalesce(c.censored, 0) > 0
),
risk AS (
    SELECT
        *,
        sum(leaving) OVER (PARTITION BY category ORDER BY day DESC
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS at_risk
    FROM per_day
),
terms AS (
    SELECT
        *,
        1.0 - events::DOUBLE / at_risk AS factor,
        CASE WHEN events < at_risk
             THEN events::DOUBLE / (at_risk::DOUBLE * (at_risk - events)) END AS greenwood_term,
        (events = at_risk)::INTEGER AS exhausted
    FROM risk
),
km AS (
    SELECT
        *,
        product(factor) OVER w AS survival,
        sum(greenwood_term) OVER w AS greenwood_sum,
        sum(exhausted) OVER w AS exhausted_so_far
    FROM terms
    WINDOW w AS (PARTITION BY category ORDER BY day
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
se AS (
    SELECT
        *,
        CASE WHEN exhausted_so_far = 0 THEN survival * sqrt(greenwood_sum) END AS greenwood_se
    FROM km
)
SELECT
    category,
    day::INTEGER AS day,
    at_risk,
    events,
    censored,
    survival,
    1.0 - survival AS cumulative_incidence,
    greenwood_se,
    CASE WHEN greenwood_se IS NOT NULL
         THEN greatest(0.0, 1.0 - survival - wilson_z() * greenwood_se) END AS ci_low,
    CASE WHEN greenwood_se IS NOT NULL
         THEN least(1.0, 1.0 - survival + wilson_z() * greenwood_se) END AS ci_high
FROM se
ORDER BY category, day;
