-- Minutes from the start of the infusion to the onset of the reaction (reactions.onset_min),
-- over current reactions (on current infusions).  One row per (term, grade), plus
-- term = 'all' (every term) and grade NULL (every grade): (term, grade), (term, all
-- grades), (all terms, grade), (all terms, all grades).
--   reactions              current reactions in the group (n)
--   patients               distinct patients with such a reaction
--   min_onset_min, max_onset_min
--   q1_onset_min, median_onset_min, q3_onset_min   25th, 50th and 75th percentiles by
--                          linear interpolation between order statistics (DuckDB
--                          quantile_cont; Hyndman & Fan type 7, R's and numpy's default)
--   within_30_min          reactions with onset_min <= 30
CREATE OR REPLACE TABLE marts.reaction_onset AS
WITH r AS (
    SELECT term, grade, onset_min, site_id, patient_key
    FROM core.current_reactions
),
grouped AS (
    SELECT
        CASE WHEN grouping(term) = 1 THEN 'all' ELSE term END AS term,
        grade,
        grouping(grade) = 1 AS all_grades,
        count(*) AS reactions,
        count(DISTINCT (site_id, patient_key)) AS patients,
        min(onset_min) AS min_onset_min,
        quantile_cont(onset_min, 0.25) AS q1_onset_min,
        quantile_cont(onset_min, 0.5) AS median_onset_min,
        quantile_cont(onset_min, 0.75) AS q3_onset_min,
        max(onset_min) AS max_onset_min,
        count(*) FILTER (WHERE onset_min <= 30) AS within_30_min
    FROM r
    GROUP BY GROUPING SETS ((term, grade), (term), (grade), ())
    HAVING count(*) > 0  -- no reaction at all: no row, not a grand total of 0
)
SELECT term, grade, reactions, patients, min_onset_min, q1_onset_min, median_onset_min,
       q3_onset_min, max_onset_min, within_30_min
FROM grouped
ORDER BY term = 'all', term, all_grades, grade;
