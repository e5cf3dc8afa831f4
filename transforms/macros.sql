-- Shared SQL: the one way of computing each thing used by more than one model.
-- Run by safety_ledger/build.py before transforms/staging.  The macros are stored in
-- the warehouse file, so an analyst can call them too.
--
-- Not here: binom_quantile(q, n, p), the exact binomial quantile behind the funnel
-- limits.  It is a Python function (scipy.stats.binom.ppf) registered on the build's
-- connection only, so only marts.reaction_rate_by_site calls it and it is a TABLE.

-- A rate: x / n, NULL (never 0, never an error) when n is 0.
CREATE OR REPLACE MACRO rate(x, n) AS
    CASE WHEN n > 0 THEN x::DOUBLE / n END;

-- 95% Wilson score interval of x successes in n trials, z = 1.959964 (marts-v1).
--   centre    = (p + z^2/(2n)) / (1 + z^2/n)
--   half      = z * sqrt(p(1-p)/n + z^2/(4n^2)) / (1 + z^2/n)
--   interval  = centre -/+ half;   NULL when n is 0.
CREATE OR REPLACE MACRO wilson_z() AS 1.959964::DOUBLE;

CREATE OR REPLACE MACRO wilson_centre(x, n) AS
    CASE WHEN n > 0 THEN
        (x::DOUBLE / n + wilson_z() ^ 2 / (2 * n)) / (1 + wilson_z() ^ 2 / n)
    END;

CREATE OR REPLACE MACRO wilson_half(x, n) AS
    CASE WHEN n > 0 THEN
        wilson_z() * sqrt((x::DOUBLE / n) * (1 - x::DOUBLE / n) / n + wilson_z() ^ 2 / (4 * n ^ 2))
        / (1 + wilson_z() ^ 2 / n)
    END;

-- At x = 0 the lower bound is exactly 0 and at x = n the upper bound exactly 1 (the
-- formula gives them up to rounding, e.g. 0.9999999999999999); otherwise clamped to
-- [0, 1] (inside the CASE: greatest and least skip NULLs, so outside it n = 0 would
-- give 0 and 1 instead of NULL).
CREATE OR REPLACE MACRO wilson_low(x, n) AS
    CASE WHEN n > 0 AND x = 0 THEN 0.0
         WHEN n > 0 THEN greatest(0.0, wilson_centre(x, n) - wilson_half(x, n)) END;
CREATE OR REPLACE MACRO wilson_high(x, n) AS
    CASE WHEN n > 0 AND x = n THEN 1.0
         WHEN n > 0 THEN least(1.0, wilson_centre(x, n) + wilson_half(x, n)) END;

-- Regimen class of an infusion from its combination list (marts-v1), with the agent
-- groups of site-submission-v1's vocabulary (tests check them against contract.py):
--   empty list (or NULL)          -> monotherapy
--   C and T (B or not)            -> chemo_tki
--   C and B, no T                 -> chemo_bevacizumab
--   C only                        -> chemotherapy
--   T, no C (B or not)            -> tki
--   anything else (B alone; only radiotherapy / other) -> other
-- radiotherapy and other never change a class that C, B or T set.
-- (`agent IN (...)` per element: DuckDB's list_has_any builds a set per row, which cost
-- 2.7 s against 1.1 s over the 8.3 million infusions at 10m events.)
CREATE OR REPLACE MACRO has_chemotherapy(combination) AS
    coalesce(list_bool_or(list_transform(combination, lambda agent: agent IN (
        'capecitabine', 'oxaliplatin', 's1', 'paclitaxel', 'nab_paclitaxel', 'docetaxel',
        'carboplatin', 'cisplatin', 'fluorouracil', 'etoposide', 'pemetrexed', 'gemcitabine',
        'irinotecan', 'leucovorin'))), false);

CREATE OR REPLACE MACRO has_bevacizumab(combination) AS
    coalesce(list_bool_or(list_transform(combination, lambda agent: agent = 'bevacizumab')), false);

CREATE OR REPLACE MACRO has_tki(combination) AS
    coalesce(list_bool_or(list_transform(combination, lambda agent: agent IN (
        'apatinib', 'lenvatinib', 'anlotinib', 'regorafenib', 'fruquintinib'))), false);

CREATE OR REPLACE MACRO regimen_class(combination) AS
    CASE
        WHEN len(coalesce(combination, []::VARCHAR[])) = 0 THEN 'monotherapy'
        WHEN has_chemotherapy(combination) THEN
            CASE
                WHEN has_tki(combination) THEN 'chemo_tki'
                WHEN has_bevacizumab(combination) THEN 'chemo_bevacizumab'
                ELSE 'chemotherapy'
            END
        WHEN has_tki(combination) THEN 'tki'
        ELSE 'other'
    END;

-- Rechallenge tier of one infusion (marts-v1): failed = not completed, or any reaction
-- of grade 3 or more; tolerated = completed with no reaction; breakthrough = completed
-- with reactions all of grade 1 or 2.  A NULL `completed` counts as not completed.
CREATE OR REPLACE MACRO infusion_outcome(completed, reactions, max_grade) AS
    CASE
        WHEN NOT coalesce(completed, false) OR coalesce(max_grade, 0) >= 3 THEN 'failed'
        WHEN reactions = 0 THEN 'tolerated'
        ELSE 'breakthrough'
    END;

-- Index grade band of a rechallenge row.
CREATE OR REPLACE MACRO grade_band(max_grade) AS
    CASE WHEN max_grade >= 3 THEN '3+' ELSE '1-2' END;
