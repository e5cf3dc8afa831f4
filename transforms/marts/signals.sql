-- One row per monitored stratum (regimen class, tumor type, site): the binomial MaxSPRT
-- (Kulldorff et al. 2011, Sequential Analysis 30:58-78) of its reaction rate against the
-- pooled rate of the program, over its infusions in order of started_at.  Design and
-- parameters in core.signal_design, the path in core.signal_paths, docs/methods.md.
--   method, baseline     'binomial MaxSPRT'; the pooled reaction rate of the program (H0)
--   infusions            current infusions of the stratum
--   monitored_infusions  of which within the upper limit on surveillance (max_infusions)
--   observed, expected   infusions with a reaction among the monitored ones; monitored x baseline
--   statistic            the highest LLR at a monitored infusion with at least min_events
--                        reactions so far (0 if none): the test rejects iff it reaches
--                        the threshold
--   threshold            the critical value for alpha 0.05 (core.signal_design)
--   status               'signal' when the statistic reached the threshold, else 'no signal'
--   first_signalled_at   started_at of the infusion at which it first did, else NULL
--   signalled_at_infusion  that infusion's index in the stratum
--   observed_at_signal, expected_at_signal, llr_at_signal
--                        the figures at that infusion: a signal is never withdrawn, so the
--                        counts of today (observed, expected) can have fallen back since
--   surveillance_ended   the stratum has more infusions than max_infusions (the later
--                        ones are not monitored)
-- Newest signals first, then the strata without one.
CREATE OR REPLACE TABLE marts.signals AS
WITH sizes AS (
    SELECT 'regimen_class' AS stratum_type, coalesce(regimen_class, '(not recorded)') AS stratum,
           count(*) AS infusions
    FROM core.infusion_outcomes GROUP BY ALL
    UNION ALL
    SELECT 'tumor_type', coalesce(tumor_type, '(not recorded)'), count(*)
    FROM core.infusion_outcomes GROUP BY ALL
    UNION ALL
    SELECT 'site_id', site_id, count(*)
    FROM core.infusion_outcomes GROUP BY ALL
),
paths AS (
    SELECT
        stratum_type,
        stratum,
        max(observed) AS observed,
        max(llr) FILTER (WHERE eligible) AS statistic,
        min(infusion_index) FILTER (WHERE crosses) AS signalled_at_infusion,
        arg_min(started_at, infusion_index) FILTER (WHERE crosses) AS first_signalled_at,
        arg_min(observed, infusion_index) FILTER (WHERE crosses) AS observed_at_signal,
        arg_min(llr, infusion_index) FILTER (WHERE crosses) AS llr_at_signal
    FROM core.signal_paths
    GROUP BY stratum_type, stratum
),
figures AS (
    SELECT
        s.stratum_type,
        s.stratum,
        s.infusions,
        CASE WHEN d.max_infusions IS NULL THEN s.infusions
             ELSE least(s.infusions, d.max_infusions) END AS monitored_infusions,
        coalesce(p.observed, 0) AS observed,
        coalesce(p.statistic, 0.0) AS statistic,
        p.signalled_at_infusion,
        p.first_signalled_at,
        p.observed_at_signal,
        p.llr_at_signal
    FROM sizes AS s
    LEFT JOIN paths AS p USING (stratum_type, stratum)
    CROSS JOIN core.signal_design AS d
)
SELECT
    f.stratum_type,
    f.stratum,
    d.method,
    d.baseline,
    f.infusions,
    f.monitored_infusions,
    f.observed,
    f.monitored_infusions * d.baseline AS expected,
    f.statistic,
    d.critical_value AS threshold,
    CASE WHEN f.signalled_at_infusion IS NOT NULL THEN 'signal' ELSE 'no signal' END AS status,
    f.first_signalled_at,
    f.signalled_at_infusion,
    f.observed_at_signal,
    f.signalled_at_infusion * d.baseline AS expected_at_signal,
    f.llr_at_signal,
    d.alpha,
    d.attained_alpha,
    d.upper_limit,
    d.max_infusions,
    d.min_events,
    coalesce(f.infusions > d.max_infusions, false) AS surveillance_ended
FROM figures AS f
CROSS JOIN core.signal_design AS d
ORDER BY f.first_signalled_at DESC NULLS LAST, f.stratum_type, f.stratum;
