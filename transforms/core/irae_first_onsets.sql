-- One row per (patient of the irAE cohort, irAE category of at least one of the
-- patient's current irAEs): the first onset of that category in the patient's follow-up.
--   first_onset_date  the onset_date of the patient's first current irAE of the category
--   onset_day         days from first_dose_date (core.irae_cohort) to first_onset_date
--   censor_day        the patient's censor_day (core.irae_cohort)
--   is_event          onset_day <= censor_day: counted in the category's curve (an irAE on
--                     the day of the last infusion counts)
--   after_censor      onset_day > censor_day: after the last infusion, not counted
-- Every other (cohort patient, category) pair has no onset and is censored at censor_day
-- (core.irae_followup lists them all).  category is never NULL (the GX rule
-- iraes.category.required), which the marts' counts rely on.  A view: 0.5 million rows
-- at 10 million events.
CREATE OR REPLACE VIEW core.irae_first_onsets AS
WITH first_onset AS (
    SELECT site_id, patient_key, category, min(onset_date) AS first_onset_date
    FROM core.current_iraes
    GROUP BY site_id, patient_key, category
),
timed AS (
    SELECT
        f.site_id,
        f.patient_key,
        f.category,
        f.first_onset_date,
        date_diff('day', k.first_dose_date, f.first_onset_date) AS onset_day,
        k.censor_day
    FROM first_onset AS f
    JOIN core.irae_cohort AS k USING (site_id, patient_key)
)
SELECT
    *,
    coalesce(onset_day <= censor_day, false) AS is_event,
    coalesce(onset_day > censor_day, false) AS after_censor
FROM timed;
