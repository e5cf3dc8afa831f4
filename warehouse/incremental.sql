-- The scope of an incremental build: which records the new batches can change.
-- Run by safety_ledger/build.py on a copy of the previous warehouse, after
-- warehouse/sources.sql has added the new batches' ledger rows (so raw.* shows their
-- events), and BEFORE any core table is touched (the core tables read here are still the
-- previous build's).
--
-- Before this file runs, build.py has made the temporary table new_batches (batch_id):
-- the batches this build adds.
--
-- Each scope_<x> holds the keys whose rows of the per-record models (the core ones and
-- marts.data_issues) are deleted and computed again, by the model's own SQL over all the
-- rows of those keys (build.py, INCREMENTAL), or whose counts are taken out and put back
-- (build.py, BY_DIFFERENCE); everything else of core (the other aggregates) and every
-- other mart is recomputed whole.  A scope may be larger than needed (recomputing an unchanged record gives the
-- same row), never smaller:
--
--   patients     a new version, or a new retraction, of the patient
--   infusions    a new version or retraction of the infusion, or its patient in scope
--                (status, tumor_type and first_dose_date come from the patient; orphans
--                included: a late parent makes them count)
--   reactions    a new version or retraction, or its infusion in scope
--   iraes        a new version or retraction, or its patient in scope
--   records      the four above, as core.corrected_versions and marts.data_issues key
--                them (a retraction's issue changes with it, in scope, or when its
--                record arrives, in scope too)
--   outcomes     core.infusion_outcomes: the infusions in scope, and every infusion that
--                any version of a reaction in scope hangs off (a correction may move a
--                reaction from one infusion to another: both change)
--   rechallenge  core.patient_rechallenge: every patient that any version of an infusion
--                in the outcomes scope belongs to (an infusion may move too).  Every row
--                of core.infusion_outcomes that can change belongs to one of them, so it
--                is also the scope of the counts updated by difference (BY_DIFFERENCE)
--   cohort       core.irae_cohort (a patient's first dose and current infusions): the
--                patients in scope and those of rechallenge

CREATE OR REPLACE TEMP TABLE new_retractions AS
SELECT site_id, record_type, ref
FROM raw.retractions SEMI JOIN new_batches USING (batch_id);

CREATE OR REPLACE TEMP TABLE scope_patient AS
SELECT site_id, patient_key FROM raw.patients SEMI JOIN new_batches USING (batch_id)
UNION
SELECT site_id, ref FROM new_retractions WHERE record_type = 'patient';

CREATE OR REPLACE TEMP TABLE scope_infusion AS
SELECT site_id, infusion_ref FROM raw.infusions SEMI JOIN new_batches USING (batch_id)
UNION
SELECT site_id, ref FROM new_retractions WHERE record_type = 'infusion'
UNION
SELECT site_id, infusion_ref FROM core.infusion_status SEMI JOIN scope_patient USING (site_id, patient_key);

CREATE OR REPLACE TEMP TABLE scope_reaction AS
SELECT site_id, reaction_ref FROM raw.reactions SEMI JOIN new_batches USING (batch_id)
UNION
SELECT site_id, ref FROM new_retractions WHERE record_type = 'reaction'
UNION
SELECT site_id, reaction_ref FROM core.reaction_status SEMI JOIN scope_infusion USING (site_id, infusion_ref);

CREATE OR REPLACE TEMP TABLE scope_irae AS
SELECT site_id, irae_ref FROM raw.iraes SEMI JOIN new_batches USING (batch_id)
UNION
SELECT site_id, ref FROM new_retractions WHERE record_type = 'irae'
UNION
SELECT site_id, irae_ref FROM core.irae_status SEMI JOIN scope_patient USING (site_id, patient_key);

CREATE OR REPLACE TEMP TABLE scope_record AS
SELECT 'patient' AS record_type, site_id, patient_key AS ref FROM scope_patient
UNION ALL
SELECT 'infusion', site_id, infusion_ref FROM scope_infusion
UNION ALL
SELECT 'reaction', site_id, reaction_ref FROM scope_reaction
UNION ALL
SELECT 'irae', site_id, irae_ref FROM scope_irae;

CREATE OR REPLACE TEMP TABLE scope_outcome AS
SELECT site_id, infusion_ref FROM scope_infusion
UNION
SELECT site_id, infusion_ref FROM raw.reactions SEMI JOIN scope_reaction USING (site_id, reaction_ref);

CREATE OR REPLACE TEMP TABLE scope_rechallenge AS
SELECT DISTINCT site_id, patient_key
FROM raw.infusions SEMI JOIN scope_outcome USING (site_id, infusion_ref);

CREATE OR REPLACE TEMP TABLE scope_cohort AS
SELECT site_id, patient_key FROM scope_patient
UNION
SELECT site_id, patient_key FROM scope_rechallenge;
