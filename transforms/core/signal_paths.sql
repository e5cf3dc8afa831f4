-- The path of the binomial MaxSPRT statistic (core.signal_design) in every stratum, at
-- the infusions where it can cross the threshold: one row per (stratum, current infusion
-- with a reaction).
-- Strata: stratum_type 'regimen_class', 'tumor_type' or 'site_id', stratum = its value.
-- Within a stratum infusions are taken in order of started_at (ties: site_id, infusion_ref).
--   infusion_index  n: the infusion's position in its stratum (1, 2, ...), over all its
--                   infusions, with or without a reaction
--   observed        c: infusions with a reaction among the first n (this one included)
--   expected        n x baseline
--   llr             the log-likelihood ratio maximized over p >= baseline (p0):
--                     c ln(c / (n p0)) + (n - c) ln((n - c) / (n (1 - p0)))  when c > n p0,
--                     0 otherwise (0 ln 0 = 0; always 0 when p0 is 0 or 1)
--   monitored       n <= max_infusions (the upper limit on the length of surveillance)
--   eligible        monitored and c >= min_events: a signal may happen here
--   crosses         eligible and llr >= critical_value
-- Why only infusions with a reaction: between two reactions c is fixed and LLR(c, n) only
-- falls as n grows (d/dn = ln((1 - c/n) / (1 - p0)) < 0 while c/n > p0), so the highest
-- LLR and the first crossing are always at an infusion with a reaction.  The infusions
-- without one still count in n.
CREATE OR REPLACE TABLE core.signal_paths AS
WITH ordered AS MATERIALIZED (
    -- one global order, so that each stratum's window sorts on an integer
    SELECT
        row_number() OVER (ORDER BY started_at, site_id, infusion_ref) AS seq,
        site_id, infusion_ref, started_at, has_reaction, regimen_class, tumor_type
    FROM core.infusion_outcomes
),
strata AS (
    SELECT 'regimen_class' AS stratum_type, coalesce(regimen_class, '(not recorded)') AS stratum,
           seq, has_reaction
    FROM ordered
    UNION ALL
    SELECT 'tumor_type', coalesce(tumor_type, '(not recorded)'), seq, has_reaction
    FROM ordered
    UNION ALL
    SELECT 'site_id', site_id, seq, has_reaction
    FROM ordered
),
indexed AS (
    SELECT
        stratum_type,
        stratum,
        seq,
        row_number() OVER (PARTITION BY stratum_type, stratum ORDER BY seq) AS infusion_index
    FROM strata
    QUALIFY has_reaction
),
counted AS (
    SELECT
        *,
        row_number() OVER (PARTITION BY stratum_type, stratum ORDER BY seq) AS observed
    FROM indexed
),
scored AS (
    SELECT
        c.stratum_type,
        c.stratum,
        c.infusion_index,
        c.observed,
        o.site_id,
        o.infusion_ref,
        o.started_at,
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
        d.max_infusions IS NULL OR c.infusion_index <= d.max_infusions AS monitored,
        d.critical_value,
        d.min_events
    FROM counted AS c
    JOIN (SELECT * FROM ordered WHERE has_reaction) AS o USING (seq)
    CROSS JOIN core.signal_design AS d
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
    monitored,
    monitored AND observed >= min_events AS eligible,
    coalesce(monitored AND observed >= min_events AND llr >= critical_value, false) AS crosses
FROM scored
ORDER BY stratum_type, stratum, infusion_index;
