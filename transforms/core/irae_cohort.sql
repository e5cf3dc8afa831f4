-- One row per patient of the irAE cohort: current patients with at least one current
-- infusion (a patient with no current infusion was never seen treated and is not in it).
--   first_dose_date     day 0 of the patient's follow-up
--   last_infusion_date  the started_local_date of the patient's last current infusion
--                       (the site's calendar date, as an irAE's onset_date is)
--   censor_day          days from first_dose_date to last_infusion_date: where the
--                       patient's follow-up for every irAE category ends
-- core.irae_followup pairs each cohort patient with each irAE category.
CREATE OR REPLACE TABLE core.irae_cohort AS
SELECT
    p.site_id,
    p.patient_key,
    p.first_dose_date,
    max(i.started_local_date) AS last_infusion_date,
    date_diff('day', p.first_dose_date, max(i.started_local_date)) AS censor_day
FROM core.current_patients AS p
JOIN core.current_infusions AS i
    ON i.site_id = p.site_id AND i.patient_key = p.patient_key
GROUP BY p.site_id, p.patient_key, p.first_dose_date;
