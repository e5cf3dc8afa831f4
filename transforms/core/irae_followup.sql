-- One row per (patient of the irAE cohort, irAE category): that patient's follow-up for
-- that category, the definition behind the Kaplan-Meier cumulative incidence
-- (marts.irae_cumulative_incidence, marts.irae_incidence_by_category).
--   cohort          core.irae_cohort: current patients with at least one current infusion,
--                   their day 0 (first_dose_date) and censor_day (their last current
--                   infusion's started_local_date, in days from day 0)
--   categories      core.irae_categories: every category with at least one current irAE
--   first_onset_date, onset_day   the patient's first current irAE of the category
--                   (core.irae_first_onsets; NULL if none)
--   is_event, after_censor   as core.irae_first_onsets defines them; false without an
--                   onset (the patient is censored at censor_day)
--   day             onset_day if is_event, else censor_day
-- A view, for analysts and tests: cohort × categories is 18 million rows at 10 million
-- events.  The two marts count the same figures from core.irae_cohort and
-- core.irae_first_onsets instead of reading it.
CREATE OR REPLACE VIEW core.irae_followup AS
SELECT
    c.category,
    k.site_id,
    k.patient_key,
    k.first_dose_date,
    k.last_infusion_date,
    f.first_onset_date,
    k.censor_day,
    f.onset_day,
    coalesce(f.is_event, false) AS is_event,
    coalesce(f.after_censor, false) AS after_censor,
    CASE WHEN f.is_event THEN f.onset_day ELSE k.censor_day END AS day
FROM core.irae_cohort AS k
CROSS JOIN core.irae_categories AS c
LEFT JOIN core.irae_first_onsets AS f
    ON f.site_id = k.site_id AND f.patient_key = k.patient_key AND f.category = c.category;
