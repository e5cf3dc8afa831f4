-- One row per current reaction: the current version of a record that counts in figures.
CREATE OR REPLACE VIEW core.current_reactions AS
SELECT * EXCLUDE (status)
FROM core.reaction_status
WHERE status = 'current';
