-- The committed events, exposed as raw.<table>.  Run by safety_ledger/build.py.
--
-- Before this file runs, build.py has
--   * exposed every events file of a batch whose ledger file exists as a temporary
--     relation landed_<table>, typed exactly by safety_ledger/event_schema.py (a table
--     with no file at all is an empty relation of that schema, never an error);
--   * set the variable as_of: a TIMESTAMPTZ, or NULL for "everything committed".
--
-- The same file serves both builds (safety_ledger/build.py): a full replay exposes every
-- committed batch in landed_<table> and the raw tables do not exist yet; an incremental
-- build works on a copy of the previous warehouse and exposes only the batches committed
-- since, so each table is created (empty, typed) only if missing, then appended to.
--
-- Here the ledger decides what counts: a batch counts when its ledger row was
-- ingested at or before as_of and says 'accepted' (a rejected submission or drop has
-- a ledger row but, by contract, no events).  Every other table keeps only rows of
-- those batches, so an events file whose batch has no ledger row (a crash between the
-- events and the ledger) is never visible, and an earlier board view is reproduced
-- exactly.

CREATE SCHEMA IF NOT EXISTS raw;

CREATE TABLE IF NOT EXISTS raw.submissions AS SELECT * FROM landed_submissions WITH NO DATA;
CREATE TABLE IF NOT EXISTS raw.patients AS SELECT * FROM landed_patients WITH NO DATA;
CREATE TABLE IF NOT EXISTS raw.infusions AS SELECT * FROM landed_infusions WITH NO DATA;
CREATE TABLE IF NOT EXISTS raw.reactions AS SELECT * FROM landed_reactions WITH NO DATA;
CREATE TABLE IF NOT EXISTS raw.iraes AS SELECT * FROM landed_iraes WITH NO DATA;
CREATE TABLE IF NOT EXISTS raw.retractions AS SELECT * FROM landed_retractions WITH NO DATA;
CREATE TABLE IF NOT EXISTS raw.literature_drops AS SELECT * FROM landed_literature_drops WITH NO DATA;
CREATE TABLE IF NOT EXISTS raw.literature AS SELECT * FROM landed_literature WITH NO DATA;
CREATE TABLE IF NOT EXISTS raw.quarantine AS SELECT * FROM landed_quarantine WITH NO DATA;

-- The submission ledger: one row per ingested batch (accepted or rejected).
INSERT INTO raw.submissions
SELECT *
FROM landed_submissions
WHERE getvariable('as_of') IS NULL OR ingested_at <= getvariable('as_of');

INSERT INTO raw.patients
SELECT * FROM landed_patients
WHERE batch_id IN (SELECT batch_id FROM raw.submissions WHERE status = 'accepted');

INSERT INTO raw.infusions
SELECT * FROM landed_infusions
WHERE batch_id IN (SELECT batch_id FROM raw.submissions WHERE status = 'accepted');

INSERT INTO raw.reactions
SELECT * FROM landed_reactions
WHERE batch_id IN (SELECT batch_id FROM raw.submissions WHERE status = 'accepted');

INSERT INTO raw.iraes
SELECT * FROM landed_iraes
WHERE batch_id IN (SELECT batch_id FROM raw.submissions WHERE status = 'accepted');

INSERT INTO raw.retractions
SELECT * FROM landed_retractions
WHERE batch_id IN (SELECT batch_id FROM raw.submissions WHERE status = 'accepted');

-- Literature drops have their own ledger, events/literature_drops/<batch_id>.parquet,
-- committing events/literature/<batch_id>.parquet.
INSERT INTO raw.literature_drops
SELECT *
FROM landed_literature_drops
WHERE getvariable('as_of') IS NULL OR ingested_at <= getvariable('as_of');

INSERT INTO raw.literature
SELECT * FROM landed_literature
WHERE batch_id IN (SELECT batch_id FROM raw.literature_drops WHERE status = 'accepted');

-- Rows that broke a one-row rule (of a site submission or of a literature drop), kept
-- with their machine-readable rules.
INSERT INTO raw.quarantine
SELECT * FROM landed_quarantine
WHERE batch_id IN (SELECT batch_id FROM raw.submissions WHERE status = 'accepted')
   OR batch_id IN (SELECT batch_id FROM raw.literature_drops WHERE status = 'accepted');
