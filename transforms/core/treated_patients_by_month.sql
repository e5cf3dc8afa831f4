-- One row per calendar month with at least one current infusion (the month of its
-- started_local_date, as its first day):
--   treated_patients  distinct current patients with a current infusion in that month
--   infusions         current infusions in that month
-- Counts only: an incremental build updates them by difference over the patients in
-- scope (safety_ledger/build.py, BY_DIFFERENCE).  The denominator of marts.irae_monthly.
CREATE OR REPLACE TABLE core.treated_patients_by_month AS
SELECT
    date_trunc('month', started_local_date)::DATE AS month,
    count(DISTINCT (site_id, patient_key)) AS treated_patients,
    count(*) AS infusions
FROM core.infusion_outcomes
GROUP BY 1;
