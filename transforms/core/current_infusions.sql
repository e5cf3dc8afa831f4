-- One row per current infusion: the current version of a record that counts in figures.
CREATE OR REPLACE VIEW core.current_infusions AS
SELECT * EXCLUDE (status)
FROM core.infusion_status
WHERE status = 'current';
