-- The committed events, exposed as raw.<table>.  Run by safety_ledger/build.py.
--
-- Before this file runs, build.py has
--   * exposed every events file of a batch whose ledger file exists as a temporary
--     relation landed_<table>, typed exactly by safety_ledger/event_schema.py (a table
--     with no file at all is an empty relation of that schema, never an error);
--   * set the variable as_of: a TIMESTAMPTZ, or NULL for "everything committed".
--
-- Here the ledger decides what counts: a batch counts when its ledger row was
-- ingested at or before as_of and says 'accepted' (a rejected submission or drop has
-- a ledger row but, by contract, no events).  Every other table keeps only rows of
-- those batches, so an events file whose batch has no ledger row (a crash between the
-- events and the ledger) is never visible, and an earlier board view is reproduced
-- exactly.

CREATE SCHEMA IF NOT EXISTS raw;

-- The submission ledger: one row per ingested batch (accepted or rejected).
CREATE OR REPLACE TABLE raw.submissions AS
SELECT *
FROM landed_submissions
WHERE getvariable('as_of') IS NULL OR ingested_at <= getvariable('as_of');

CREATE OR REPLACE TABLE raw.patients AS
SELECT * FROM landed_patients
WHERE batch_id IN (SELECT batch_id FROM raw.submissions WHERE status = 'accepted');

CREATE OR REPLACE TABLE raw.infusions AS
SELECT * FROM landed_infusions
WHERE batch_id IN (SELECT batch_id FROM raw.submissions WHERE status = 'accepted');

CREATE OR REPLACE TABLE raw.reactions AS
SELECT * FROM landed_reactions
WHERE batch_id IN (SELECT batch_id FROM raw.submissions WHERE status = 'accepted');

CREATE OR REPLACE TABLE raw.iraes AS
SELECT * FROM landed_iraes
WHERE batch_id IN (SELECT batch_id FROM raw.submissions WHERE status = 'accepted');

CREATE OR REPLACE TABLE raw.retractions AS
SELECT * FROM landed_retractions
WHERE batch_id IN (SELECT batch_id FROM raw.submissions WHERE status = 'accepted');

-- Literature drops have their own ledger, events/literature_drops/<batch_id>.parquet,
-- committing events/literature/<batch_id>.parquet.
CREATE OR REPLACE TABLE raw.literature_drops AS
SELECT *
FROM landed_literature_drops
WHERE getvariable('as_of') IS NULL OR ingested_at <= getvariable('as_of');

CREATE OR REPLACE TABLE raw.literature AS
SELECT * FROM landed_literature
WHERE batch_id IN (SELECT batch_id FROM raw.literature_drops WHERE status = 'accepted');

-- Rows that broke a one-row rule (of a site submission or of a literature drop), kept
-- with their machine-readable rules.
CREATE OR REPLACE TABLE raw.quarantine AS
SELECT * FROM landed_quarantine
WHERE batch_id IN (SELECT batch_id FROM raw.submissions WHERE status = 'accepted')
   OR batch_id IN (SELECT batch_id FROM raw.literature_drops WHERE status = 'accepted');
