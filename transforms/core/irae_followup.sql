-- One row per (patient of the irAE cohort, irAE category): that patient's follow-up for
-- that category, the input of the Kaplan-Meier cumulative incidence (marts.irae_cumulative_incidence,
-- marts.irae_incidence_by_category).
--   cohort          current patients with at least one current infusion; a patient with
--                   no current infusion was never seen treated and is not in it
--   categories      every category with at least one current irAE (of any patient)
--   day 0           the patient's first_dose_date
--   censor_day      days from first_dose_date to the started_local_date of the patient's
--                   last current infusion (the site's calendar dates, as onset_date is)
--   onset_day       days from first_dose_date to the onset_date of the patient's first
--                   current irAE of the category (NULL if none)
--   is_event        onset_day <= censor_day: an irAE on the day of the last infusion counts
--   after_censor    onset_day > censor_day: the irAE came after the last infusion; the
--                   patient is censored at censor_day and that irAE is not counted
--   day             onset_day if is_event, else censor_day
CREATE OR REPLACE TABLE core.irae_followup AS
WITH cohort AS (
    SELECT
        p.site_id,
        p.patient_key,
        p.first_dose_date,
        max(i.started_local_date) AS last_infusion_date
    FROM core.current_patients AS p
    JOIN core.current_infusions AS i
        ON i.site_id = p.site_id AND i.patient_key = p.patient_key
    GROUP BY p.site_id, p.patient_key, p.first_dose_date
),
categories AS (
    SELECT DISTINCT category FROM core.current_iraes
),
first_onset AS (
    SELECT site_id, patient_key, category, min(onset_date) AS onset_date
    FROM core.current_iraes
    GROUP BY site_id, patient_key, category
),
followup AS (
    SELECT
        c.category,
        k.site_id,
        k.patient_key,
        k.first_dose_date,
        k.last_infusion_date,
        f.onset_date AS first_onset_date,
        date_diff('day', k.first_dose_date, k.last_infusion_date) AS censor_day,
        date_diff('day', k.first_dose_date, f.onset_date) AS onset_day
    FROM cohort AS k
    CROSS JOIN categories AS c
    LEFT JOIN first_onset AS f
        ON f.site_id = k.site_id AND f.patient_key = k.patient_key AND f.category = c.category
)
SELECT
    *,
    coalesce(onset_day <= censor_day, false) AS is_event,
    coalesce(onset_day > censor_day, false) AS after_censor,
    CASE WHEN onset_day <= censor_day THEN onset_day ELSE censor_day END AS day
FROM followup;
