-- marts-v1: one row per (protocol, premedicated, index_grade_band) of the patients
-- with an index reaction.  protocol and premedicated are those of the rechallenge
-- infusion; a patient not rechallenged is in a row with both NULL.
-- success_rate = (tolerated + breakthrough) / rechallenged, 95% Wilson interval,
-- NULL when rechallenged is 0.
CREATE OR REPLACE TABLE marts.rechallenge_outcomes AS
WITH counted AS (
    SELECT
        protocol,
        premedicated,
        index_grade_band,
        count(*) AS patients_with_index_reaction,
        count(*) FILTER (WHERE rechallenged) AS rechallenged,
        count(*) FILTER (WHERE rechallenge_outcome = 'tolerated') AS tolerated,
        count(*) FILTER (WHERE rechallenge_outcome = 'breakthrough') AS breakthrough,
        count(*) FILTER (WHERE rechallenge_outcome = 'failed') AS failed
    FROM core.patient_rechallenge
    GROUP BY protocol, premedicated, index_grade_band
)
SELECT
    *,
    rate(tolerated + breakthrough, rechallenged) AS success_rate,
    wilson_low(tolerated + breakthrough, rechallenged) AS ci_low,
    wilson_high(tolerated + breakthrough, rechallenged) AS ci_high
FROM counted
ORDER BY protocol NULLS LAST, premedicated NULLS LAST, index_grade_band;
