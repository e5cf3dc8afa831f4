-- One row per irAE category (every category with at least one current irAE): the
-- follow-up behind its Kaplan-Meier curve (marts.irae_cumulative_incidence) and where the
-- curve ends.  Definitions of the cohort, day 0 and censoring: core.irae_followup; the
-- figures are counted from core.irae_cohort and core.irae_first_onsets (a cohort patient
-- without an onset of the category is censored).
--   cohort_patients             patients in the cohort (current patients with >= 1 current
--                               infusion): the curve's denominator at day 0
--   events                      of whom with a first irAE of the category on or before
--                               their last infusion's date (counted in the curve)
--   events_after_last_infusion  of whom with a first irAE of the category only after their
--                               last infusion: censored at the last infusion, not counted
--   censored                    cohort patients without a counted event (includes the above)
--   patients_without_infusion   current patients with a current irAE of the category and no
--                               current infusion: outside the cohort (core.irae_cohort; a
--                               current irAE's patient is current), not in the curve
--   max_day                     the last event or censor day
--   cumulative_incidence, ci_low, ci_high, greenwood_se   at max_day (the curve's end)
--   median_onset_day            median of onset_day among the counted events
CREATE OR REPLACE TABLE marts.irae_incidence_by_category AS
WITH cohort AS (
    SELECT count(*) AS patients FROM core.irae_cohort
),
f AS (
    SELECT
        category,
        count(*) FILTER (WHERE is_event) AS events,
        count(*) FILTER (WHERE after_censor) AS events_after_last_infusion,
        quantile_cont(onset_day, 0.5) FILTER (WHERE is_event) AS median_onset_day
    FROM core.irae_first_onsets
    GROUP BY category
),
untreated AS (
    SELECT e.category, count(DISTINCT (e.site_id, e.patient_key)) AS patients
    FROM core.current_iraes AS e
    ANTI JOIN core.irae_cohort AS k USING (site_id, patient_key)
    GROUP BY e.category
),
curve_end AS (
    SELECT category, day AS max_day, cumulative_incidence, ci_low, ci_high, greenwood_se
    FROM marts.irae_cumulative_incidence
    QUALIFY row_number() OVER (PARTITION BY category ORDER BY day DESC) = 1
)
SELECT
    c.category,
    k.patients AS cohort_patients,
    coalesce(f.events, 0) AS events,
    coalesce(f.events_after_last_infusion, 0) AS events_after_last_infusion,
    k.patients - coalesce(f.events, 0) AS censored,
    coalesce(u.patients, 0) AS patients_without_infusion,
    e.max_day,
    e.cumulative_incidence,
    e.ci_low,
    e.ci_high,
    e.greenwood_se,
    f.median_onset_day
FROM core.irae_categories AS c
CROSS JOIN cohort AS k
LEFT JOIN f USING (category)
LEFT JOIN untreated AS u USING (category)
LEFT JOIN curve_end AS e USING (category)
ORDER BY c.category;
