-- The committed events, exposed as raw.<table>.  Run by safety_ledger/build.py.
--
-- Before this file runs, build.py has
--   * exposed every committed ledger row as the temporary relations landed_submissions
--     and landed_literature_drops, typed exactly by safety_ledger/event_schema.py (no
--     file at all is an empty relation of that schema, never an error);
--   * set the variable as_of: a TIMESTAMPTZ, or NULL for "everything committed".
--
-- Here the ledger decides what counts: a batch counts when its ledger row was ingested
-- at or before as_of and says 'accepted' (a rejected submission or drop has a ledger row
-- but, by contract, no events).  The ledgers are copied into the warehouse (what this
-- build showed, which the next build compares against); after this file, build.py makes
-- every other raw.<table> a view over the event files of counted_batches only, read where
-- they lie.  So an events file whose batch has no ledger row (a crash between the events
-- and the ledger) is never visible, and an earlier board view is reproduced exactly.
--
-- The same file serves both builds (safety_ledger/build.py): a full replay starts from
-- an empty file; an incremental build works on a copy of the previous warehouse, whose
-- ledgers get the rows committed since.

CREATE SCHEMA IF NOT EXISTS raw;

-- The submission ledger: one row per ingested batch (accepted or rejected).
CREATE TABLE IF NOT EXISTS raw.submissions AS SELECT * FROM landed_submissions WITH NO DATA;
INSERT INTO raw.submissions
SELECT * FROM landed_submissions
WHERE (getvariable('as_of') IS NULL OR ingested_at <= getvariable('as_of'))
  AND batch_id NOT IN (SELECT batch_id FROM raw.submissions);

-- Literature drops have their own ledger, events/literature_drops/<batch_id>.parquet,
-- committing events/literature/<batch_id>.parquet.
CREATE TABLE IF NOT EXISTS raw.literature_drops AS SELECT * FROM landed_literature_drops WITH NO DATA;
INSERT INTO raw.literature_drops
SELECT * FROM landed_literature_drops
WHERE (getvariable('as_of') IS NULL OR ingested_at <= getvariable('as_of'))
  AND batch_id NOT IN (SELECT batch_id FROM raw.literature_drops);

-- The batches whose events count: raw.patients, raw.infusions, raw.reactions, raw.iraes,
-- raw.retractions and raw.quarantine read a site submission's files, raw.literature and
-- raw.quarantine a literature drop's.
CREATE OR REPLACE TEMP VIEW counted_batches AS
SELECT batch_id FROM raw.submissions WHERE status = 'accepted'
UNION ALL
SELECT batch_id FROM raw.literature_drops WHERE status = 'accepted';
