-- Rechallenge success by protocol of the rechallenge infusion (beyond marts-v1; issue 5 item 4).
-- Grain: source x protocol.
--   source 'warehouse': the rechallenged patients of core.patient_rechallenge (current records),
--     one row per protocol of the contract's vocabulary (standard, extended, stepwise,
--     desensitization: safety_ledger/contract.py PROTOCOLS), zeros included, plus a row for any
--     other value observed (none can pass validation; kept so no patient is ever dropped).
--   source 'Seed case series, Table 4': the same four rows counted from the paper's Table 4 as
--     published (staging.ref_seed_table4: typed in from the paper, not our coding of the seed).
-- Counts are patients: rechallenged, tolerated / breakthrough / failed (the rechallenge tier,
-- marts-v1), successes = tolerated + breakthrough, premedicated (rechallenge infusion's
-- premedication list not empty).  success_rate = successes / rechallenged with its 95% Wilson
-- interval (z = 1.959964), NULL when rechallenged is 0.  A patient not rechallenged has no
-- protocol and is in no row here (marts.rechallenge_outcomes counts them).
CREATE OR REPLACE TABLE marts.rechallenge_by_protocol AS
WITH vocabulary(protocol, protocol_order) AS (
    VALUES ('standard', 1), ('extended', 2), ('stepwise', 3), ('desensitization', 4)
),
ours AS (
    SELECT
        protocol,
        count(*) AS rechallenged,
        count(*) FILTER (WHERE rechallenge_outcome = 'tolerated') AS tolerated,
        count(*) FILTER (WHERE rechallenge_outcome = 'breakthrough') AS breakthrough,
        count(*) FILTER (WHERE rechallenge_outcome = 'failed') AS failed,
        count(*) FILTER (WHERE premedicated) AS premedicated
    FROM core.patient_rechallenge
    WHERE rechallenged
    GROUP BY protocol
),
paper AS (
    SELECT
        protocol,
        count(*) AS rechallenged,
        count(*) FILTER (WHERE tier = 'tolerated') AS tolerated,
        count(*) FILTER (WHERE tier = 'breakthrough') AS breakthrough,
        count(*) FILTER (WHERE tier = 'failed') AS failed,
        count(*) FILTER (WHERE premedicated) AS premedicated,
        string_agg('case ' || case_no, ', ' ORDER BY case_no) AS cases
    FROM staging.ref_seed_table4
    GROUP BY protocol
),
counted AS (
    SELECT
        'warehouse' AS source,
        NULL::VARCHAR AS citation,
        coalesce(v.protocol, o.protocol) AS protocol,
        coalesce(v.protocol_order, 5) AS protocol_order,
        coalesce(o.rechallenged, 0) AS rechallenged,
        coalesce(o.tolerated, 0) AS tolerated,
        coalesce(o.breakthrough, 0) AS breakthrough,
        coalesce(o.failed, 0) AS failed,
        coalesce(o.premedicated, 0) AS premedicated,
        NULL::VARCHAR AS reference_cases
    FROM vocabulary AS v
    FULL OUTER JOIN ours AS o ON o.protocol = v.protocol
    UNION ALL
    SELECT
        'Seed case series, Table 4',
        'Case series of five cadonilimab-induced allergic or infusion-related reactions in '
        || 'patients with advanced solid tumors (the seed of this program), Table 4 '
        || '"Premedication, infusion adjustments, and outcomes of cadonilimab rechallenge in '
        || 'hypersensitivity cases", as published: cases 1, 2 and 4; protocol read from its '
        || '"Infusion adjustment" column, tier from its reaction and outcome columns',
        v.protocol,
        v.protocol_order,
        coalesce(p.rechallenged, 0),
        coalesce(p.tolerated, 0),
        coalesce(p.breakthrough, 0),
        coalesce(p.failed, 0),
        coalesce(p.premedicated, 0),
        p.cases
    FROM vocabulary AS v
    LEFT JOIN paper AS p ON p.protocol = v.protocol
)
SELECT
    source,
    citation,
    protocol,
    protocol_order,
    rechallenged,
    tolerated,
    breakthrough,
    failed,
    tolerated + breakthrough AS successes,
    rate(tolerated + breakthrough, rechallenged) AS success_rate,
    wilson_low(tolerated + breakthrough, rechallenged) AS ci_low,
    wilson_high(tolerated + breakthrough, rechallenged) AS ci_high,
    premedicated,
    reference_cases
FROM counted
ORDER BY source = 'warehouse' DESC, protocol_order, protocol NULLS LAST;
