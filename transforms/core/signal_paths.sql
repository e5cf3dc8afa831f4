-- The path of the binomial MaxSPRT statistic (core.signal_design) in every stratum over
-- its surveillance, at the infusions where it can cross the threshold: one row per
-- (stratum, monitored current infusion with a reaction).
-- Strata: stratum_type 'regimen_class', 'tumor_type' or 'site_id', stratum = its value.
-- Within a stratum infusions are taken in order of started_at (ties: site_id, infusion_ref).
-- Monitored: the stratum's first max_infusions infusions (the upper limit on the length of
-- surveillance; all of them when max_infusions is NULL, i.e. no reaction at all).  The
-- later ones are never part of the test (marts.signals: surveillance_ended), so they have
-- no row here.
--   infusion_index  n: the infusion's position in its stratum (1, 2, ...), over all its
--                   infusions, with or without a reaction
--   observed        c: infusions with a reaction among the first n (this one included)
--   expected        n x baseline
--   llr             the log-likelihood ratio maximized over p >= baseline (p0):
--                     c ln(c / (n p0)) + (n - c) ln((n - c) / (n (1 - p0)))  when c > n p0,
--                     0 otherwise (0 ln 0 = 0; always 0 when p0 is 0 or 1)
--   eligible        c >= min_events: a signal may happen here
--   crosses         eligible and llr >= critical_value
-- Why only infusions with a reaction: between two reactions c is fixed and LLR(c, n) only
-- falls as n grows (d/dn = ln((1 - c/n) / (1 - p0)) < 0 while c/n > p0), so the highest
-- LLR and the first crossing are always at an infusion with a reaction.  The infusions
-- without one still count in n.
CREATE OR REPLACE TABLE core.signal_paths AS
WITH strata AS (
    SELECT 'regimen_class' AS stratum_type, coalesce(regimen_class, '(not recorded)') AS stratum,
           started_at, site_id, infusion_ref, has_reaction
    FROM core.infusion_outcomes
    UNION ALL
    SELECT 'tumor_type', coalesce(tumor_type, '(not recorded)'),
           started_at, site_id, infusion_ref, has_reaction
    FROM core.infusion_outcomes
    UNION ALL
    SELECT 'site_id', site_id, started_at, site_id, infusion_ref, has_reaction
    FROM core.infusion_outcomes
),
surveillance AS (
    -- each stratum's monitored infusions: its first max_infusions in order, kept by a
    -- bounded top-N per stratum (no sort of every infusion)
    SELECT
        stratum_type,
        stratum,
        min_by({'started_at': started_at, 'site_id': site_id, 'infusion_ref': infusion_ref,
                'has_reaction': has_reaction},
               (started_at, site_id, infusion_ref),
               (SELECT greatest(coalesce(max_infusions, infusions), 1) FROM core.signal_design))
            AS monitored
    FROM strata
    GROUP BY stratum_type, stratum
),
monitored AS (
    SELECT stratum_type, stratum, unnest(monitored, recursive := true)
    FROM surveillance
),
counted AS (
    SELECT
        stratum_type,
        stratum,
        site_id,
        infusion_ref,
        started_at,
        has_reaction,
        row_number() OVER w AS infusion_index,
        count(*) FILTER (WHERE has_reaction) OVER w AS observed
    FROM monitored
    WINDOW w AS (PARTITION BY stratum_type, stratum ORDER BY started_at, site_id, infusion_ref
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
scored AS (
    SELECT
        c.stratum_type,
        c.stratum,
        c.infusion_index,
        c.observed,
        c.site_id,
        c.infusion_ref,
        c.started_at,
        c.infusion_index * d.baseline AS expected,
        CASE
            WHEN d.baseline > 0 AND d.baseline < 1 AND c.observed > c.infusion_index * d.baseline THEN
                c.observed * ln(c.observed / (c.infusion_index * d.baseline))
                + CASE WHEN c.infusion_index > c.observed
                       THEN (c.infusion_index - c.observed)
                            * ln((c.infusion_index - c.observed) / (c.infusion_index * (1 - d.baseline)))
                       ELSE 0.0 END
            ELSE 0.0
        END AS llr,
        d.critical_value,
        d.min_events
    FROM counted AS c
    CROSS JOIN core.signal_design AS d
    WHERE c.has_reaction
)
SELECT
    stratum_type,
    stratum,
    infusion_index,
    observed,
    site_id,
    infusion_ref,
    started_at,
    expected,
    llr,
    observed >= min_events AS eligible,
    coalesce(observed >= min_events AND llr >= critical_value, false) AS crosses
FROM scored
ORDER BY stratum_type, stratum, infusion_index;
