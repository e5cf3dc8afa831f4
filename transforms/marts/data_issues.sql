-- One row per record left out of every figure because of a rule across records, for
-- the site to fix.  Retracted records and what hangs off them are not issues.
--   orphan                     the parent (patient, or infusion) has not been received
--                              at this site; counts once the parent arrives
--   parent_excluded            a reaction whose infusion is itself left out by an issue
--   started_before_first_dose  an infusion's started_local_date < first_dose_date
--   onset_before_first_dose    an irAE's onset_date < first_dose_date
--   retraction_unmatched       a retraction of a record this site has not sent (it
--                              applies if the record arrives later)
-- ref is the record's *_ref (for a patient, its pseudonymized patient_key).
-- Stored in (site_id, record_type, ref, issue) order by a full replay; an incremental
-- build recomputes the rows of the records in scope and appends them (build.INCREMENTAL).
CREATE OR REPLACE TABLE marts.data_issues AS
WITH received_retracted AS (
    -- the retracted records this site has sent: a record with a retraction has status
    -- 'retracted' (the first rule of every *_status), so a retraction whose record is not
    -- among these is one of a record never received
    SELECT site_id, 'patient' AS record_type, patient_key AS ref FROM core.patient_status WHERE status = 'retracted'
    UNION ALL
    SELECT site_id, 'infusion', infusion_ref FROM core.infusion_status WHERE status = 'retracted'
    UNION ALL
    SELECT site_id, 'reaction', reaction_ref FROM core.reaction_status WHERE status = 'retracted'
    UNION ALL
    SELECT site_id, 'irae', irae_ref FROM core.irae_status WHERE status = 'retracted'
),
issues AS (
    SELECT site_id, 'infusion' AS record_type, infusion_ref AS ref, status AS issue,
        CASE status
            WHEN 'orphan' THEN 'its patient (patient_key ' || patient_key || ') has not been received from this site'
            ELSE 'started on ' || started_local_date || ', before the patient''s first_dose_date ' || first_dose_date
        END AS detail,
        submission_id, recorded_at
    FROM core.infusion_status
    WHERE status IN ('orphan', 'started_before_first_dose')
    UNION ALL
    SELECT site_id, 'reaction', reaction_ref, status,
        CASE status
            WHEN 'orphan' THEN 'its infusion ' || infusion_ref || ' has not been received from this site'
            ELSE 'its infusion ' || infusion_ref || ' is left out (' || infusion_status || ')'
        END,
        submission_id, recorded_at
    FROM core.reaction_status
    WHERE status IN ('orphan', 'parent_excluded')
    UNION ALL
    SELECT site_id, 'irae', irae_ref, status,
        CASE status
            WHEN 'orphan' THEN 'its patient (patient_key ' || patient_key || ') has not been received from this site'
            ELSE 'onset on ' || onset_date || ', before the patient''s first_dose_date ' || first_dose_date
        END,
        submission_id, recorded_at
    FROM core.irae_status
    WHERE status IN ('orphan', 'onset_before_first_dose')
    UNION ALL
    SELECT t.site_id, t.record_type, t.ref, 'retraction_unmatched',
        'retraction of a ' || t.record_type || ' this site has not sent',
        t.submission_id, t.recorded_at
    FROM staging.stg_retractions AS t
    ANTI JOIN received_retracted AS v USING (site_id, record_type, ref)
)
SELECT site_id, record_type, ref, issue, detail, submission_id, recorded_at
FROM issues
ORDER BY site_id, record_type, ref, issue;
