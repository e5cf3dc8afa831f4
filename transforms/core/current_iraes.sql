-- One row per current irae: the current version of a record that counts in figures.
CREATE OR REPLACE VIEW core.current_iraes AS
SELECT * EXCLUDE (status)
FROM core.irae_status
WHERE status = 'current';
