-- Grade distribution of current reactions (by CTCAE term) and current irAEs (by category).
-- One row per (event_type, kind, grade) for grades 1 to 5 of every kind observed, zeros
-- included, where event_type is 'reaction' (kind = term) or 'irae' (kind = category), and
-- kind = 'all' pools every term / category of the event type.
--   events         current events of that kind and grade
--   kind_events    current events of that kind (every grade): the denominator
--   share          events / kind_events, with its 95% Wilson interval ci_low, ci_high
--                  (z = 1.959964)
--   patients       distinct patients with an event of that kind and grade
-- Reactions count on current infusions only (as every reaction figure); irAEs are current
-- irAEs (a patient needs no infusion).
CREATE OR REPLACE TABLE marts.grade_distribution AS
WITH ev AS (
    SELECT 'reaction' AS event_type, term AS kind, grade, site_id, patient_key
    FROM core.current_reactions
    UNION ALL
    SELECT 'irae', category, grade, site_id, patient_key
    FROM core.current_iraes
),
pooled AS (
    SELECT * FROM ev
    UNION ALL
    SELECT event_type, 'all', grade, site_id, patient_key FROM ev
),
kinds AS (
    SELECT event_type, kind, count(*) AS kind_events
    FROM pooled
    GROUP BY event_type, kind
),
counts AS (
    SELECT event_type, kind, grade, count(*) AS events,
           count(DISTINCT (site_id, patient_key)) AS patients
    FROM pooled
    GROUP BY event_type, kind, grade
)
SELECT
    k.event_type,
    k.kind,
    g.grade,
    coalesce(c.events, 0) AS events,
    k.kind_events,
    rate(coalesce(c.events, 0), k.kind_events) AS share,
    wilson_low(coalesce(c.events, 0), k.kind_events) AS ci_low,
    wilson_high(coalesce(c.events, 0), k.kind_events) AS ci_high,
    coalesce(c.patients, 0) AS patients
FROM kinds AS k
CROSS JOIN range(1, 6) AS g(grade)
LEFT JOIN counts AS c
    ON c.event_type = k.event_type AND c.kind = k.kind AND c.grade = g.grade
ORDER BY k.event_type DESC, k.kind = 'all', k.kind, g.grade;
