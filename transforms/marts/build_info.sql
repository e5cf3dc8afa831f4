-- One row: when this warehouse was built, as of when (NULL = every committed batch),
-- and how many rows of each raw table it was built from.  For the dashboard's
-- freshness line.  built_at and as_of are set by build.py.
CREATE OR REPLACE TABLE marts.build_info AS
SELECT
    getvariable('built_at')::TIMESTAMPTZ AS built_at,
    getvariable('as_of')::TIMESTAMPTZ AS as_of,
    (SELECT count(*) FROM raw.patients) AS patients,
    (SELECT count(*) FROM raw.infusions) AS infusions,
    (SELECT count(*) FROM raw.reactions) AS reactions,
    (SELECT count(*) FROM raw.iraes) AS iraes,
    (SELECT count(*) FROM raw.retractions) AS retractions,
    (SELECT count(*) FROM raw.literature) AS literature,
    (SELECT count(*) FROM raw.submissions) AS submissions,
    (SELECT count(*) FROM raw.quarantine) AS quarantine;
