-- The committed events, exposed as raw.<table>.  Run by safety_ledger/build.py.
--
-- Before this file runs, build.py has
--   * set the variable as_of: a TIMESTAMPTZ, or NULL for "everything committed";
--   * exposed the committed ledger rows ingested at or before as_of as the temporary
--     views shown_submissions and shown_literature_drops (build._expose_ledgers, the one
--     place of that cut), typed exactly by safety_ledger/event_schema.py (no file at all
--     is an empty view of that schema, never an error).
--
-- Here the ledger decides what counts: a batch counts when its ledger row is shown
-- and says 'accepted' (a rejected submission or drop has a ledger row
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
CREATE TABLE IF NOT EXISTS raw.submissions AS SELECT * FROM shown_submissions WITH NO DATA;
INSERT INTO raw.submissions
SELECT * FROM shown_submissions
WHERE batch_id NOT IN (SELECT batch_id FROM raw.submissions);

-- Literature drops have their own ledger, events/literature_drops/<batch_id>.parquet,
-- committing events/literature/<batch_id>.parquet.
CREATE TABLE IF NOT EXISTS raw.literature_drops AS SELECT * FROM shown_literature_drops WITH NO DATA;
INSERT INTO raw.literature_drops
SELECT * FROM shown_literature_drops
WHERE batch_id NOT IN (SELECT batch_id FROM raw.literature_drops);

-- The batches whose events count: raw.patients, raw.infusions, raw.reactions, raw.iraes,
-- raw.retractions and raw.quarantine read a site submission's files, raw.literature and
-- raw.quarantine a literature drop's.
CREATE OR REPLACE TEMP VIEW counted_batches AS
SELECT batch_id FROM raw.submissions WHERE status = 'accepted'
UNION ALL
SELECT batch_id FROM raw.literature_drops WHERE status = 'accepted';
