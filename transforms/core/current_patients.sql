-- One row per current patient: the current version of a record that counts in figures.
CREATE OR REPLACE VIEW core.current_patients AS
SELECT * EXCLUDE (status)
FROM core.patient_status
WHERE status = 'current';
