-- One row: the design of the sequential signal detection behind marts.signals
-- (docs/methods.md).  Method: the binomial MaxSPRT with continuous monitoring,
--   Kulldorff M, Davis RL, Kolczak M, Lewis E, Lieu T, Platt R (2011). A maximized
--   sequential probability ratio test for drug and vaccine safety surveillance.
--   Sequential Analysis 30:58-78;
-- with a minimum number of reactions before a signal (Kulldorff M, Silva IR (2017),
-- REVSTAT 15(3):373-394: "a good rule of thumb is M = 4").
--   baseline        H0 reaction probability per infusion: the pooled reaction rate of the
--                   program, i.e. current infusions with a reaction / current infusions,
--                   all sites, tumor types and regimens together (the stratum included)
--   alpha           0.05: probability of a signal in a stratum within max_infusions when
--                   its rate is the baseline
--   upper_limit     100 expected reactions: the length of surveillance of a stratum
--   max_infusions   floor(upper_limit / baseline): infusions monitored per stratum
--   min_events      4: no signal before the stratum's 4th reaction
--   critical_value  the smallest flat LLR boundary with P(signal | H0) <= alpha
--                   (safety_ledger/signals.py, exact; a build-time UDF)
--   attained_alpha  that probability, exactly (the data are discrete, so <= alpha)
CREATE OR REPLACE TABLE core.signal_design AS
WITH pooled AS (
    SELECT
        count(*) AS infusions,
        count(*) FILTER (WHERE has_reaction) AS reaction_infusions,
        rate(count(*) FILTER (WHERE has_reaction), count(*)) AS baseline
    FROM core.infusion_outcomes
),
params AS (
    SELECT
        *,
        'binomial MaxSPRT' AS method,
        0.05::DOUBLE AS alpha,
        100.0::DOUBLE AS upper_limit,
        4::BIGINT AS min_events
    FROM pooled
),
sized AS (
    SELECT
        *,
        CASE WHEN baseline > 0 THEN floor(upper_limit / baseline)::BIGINT END AS max_infusions
    FROM params
),
valued AS (
    SELECT
        *,
        CASE WHEN baseline > 0 AND baseline < 1
             THEN maxsprt_critical_value(baseline, max_infusions, alpha, min_events) END
            AS critical_value
    FROM sized
)
SELECT
    method,
    infusions,
    reaction_infusions,
    baseline,
    alpha,
    upper_limit,
    max_infusions,
    min_events,
    critical_value,
    CASE WHEN critical_value IS NOT NULL
         THEN maxsprt_signal_probability(critical_value, baseline, max_infusions, 1.0, min_events)
    END AS attained_alpha
FROM valued;
