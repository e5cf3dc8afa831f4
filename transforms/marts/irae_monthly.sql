-- marts-v1: one row per (month, category) with at least one current irAE.
--   month             first day of the calendar month of onset_date
--   events            current irAEs;  grade3plus_events: of which grade >= 3
--   patients          distinct patients with such an irAE
--   treated_patients  distinct current patients with a current infusion whose
--                     started_local_date falls in that month (same for every category;
--                     core.treated_patients_by_month)
CREATE OR REPLACE TABLE marts.irae_monthly AS
WITH events AS (
    SELECT
        onset_month AS month,
        category,
        count(*) AS events,
        count(*) FILTER (WHERE grade >= 3) AS grade3plus_events,
        count(DISTINCT (site_id, patient_key)) AS patients
    FROM core.current_iraes
    GROUP BY onset_month, category
)
SELECT
    e.month,
    e.category,
    e.events,
    e.grade3plus_events,
    e.patients,
    coalesce(t.treated_patients, 0) AS treated_patients
FROM events AS e
LEFT JOIN core.treated_patients_by_month AS t USING (month)
ORDER BY e.month, e.category;
