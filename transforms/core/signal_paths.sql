-- The path of the binomial MaxSPRT statistic (core.signal_design) in every stratum over
-- its surveillance, at the infusions where it can cross the threshold: one row per
-- (stratum, monitored current infusion with a reaction).
-- Strata: stratum_type 'regimen_class', 'tumor_type' or 'site_id', stratum = its value.
-- Within a stratum infusions are taken in order of started_at (ties: site_id, infusion_ref).
-- started_at is never NULL (the GX rule infusions.started_at.required), which the horizon
-- below relies on.
-- Monitored: the stratum's first max_infusions infusions (the upper limit on the length of
-- surveillance; all of them when max_infusions is NULL, i.e. no reaction at all).  The
-- later ones are never part of the test (marts.signals: surveillance_ended), so they have
-- no row here.  Only the infusions started by the stratum's horizon (the start of its
-- last monitored infusion) are read in order.
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
WITH strata AS NOT MATERIALIZED (
    -- read twice below: computed where it is read, not stored (8 million rows x 3)
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
length AS (
    SELECT greatest(coalesce(max_infusions, infusions), 1) AS monitored FROM core.signal_design
),
horizons AS (
    -- the started_at of each stratum's last monitored infusion: the largest of its first
    -- `monitored` start times (a bounded top-N of timestamps, no sort of every infusion)
    SELECT
        stratum_type,
        stratum,
        list_max(min_by(started_at, started_at, (SELECT monitored FROM length))) AS horizon
    FROM strata
    GROUP BY stratum_type, stratum
),
counted AS (
    -- each stratum's infusions started by its horizon, numbered in order (those started at
    -- the horizon itself by the tie-break): the first `monitored` of them are monitored
    SELECT
        s.stratum_type,
        s.stratum,
        s.site_id,
        s.infusion_ref,
        s.started_at,
        s.has_reaction,
        row_number() OVER w AS infusion_index,
        count(*) FILTER (WHERE s.has_reaction) OVER w AS observed
    FROM strata AS s
    JOIN horizons AS h
        ON h.stratum_type = s.stratum_type AND h.stratum = s.stratum AND s.started_at <= h.horizon
    WINDOW w AS (PARTITION BY s.stratum_type, s.stratum ORDER BY s.started_at, s.site_id, s.infusion_ref
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
    WHERE c.has_reaction AND c.infusion_index <= (SELECT monitored FROM length)
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
