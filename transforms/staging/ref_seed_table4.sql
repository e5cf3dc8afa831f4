-- The seed case series' Table 4 as published: a reference, typed in by hand from the paper,
-- NOT read from our coding of the seed (samples/landing/SEED-CASES/...).  One row per case
-- of the table.  Used by marts.rechallenge_by_protocol for its reference rows.
--
-- Source: case series "cadonilimab-induced allergic or infusion-related reactions in patients
-- with different advanced solid tumors" (/work/shared/seed/000_acf6ee2aaa7f1d6e.txt; the stored
-- text names no authors, journal or year), Table 4, quoted:
--
--   Table 4 | Premedication, infusion adjustments, and outcomes of cadonilimab rechallenge in
--   hypersensitivity cases.
--   Case | Premedication | Infusion adjustment | Reaction manifestation | Outcome | Treatment cycle
--   1 | Dexamethasone 10 mg IV, diphenhydramine 25 mg IV, famotidine 50 mg IV (30 min before
--       infusion) | Cadonilimab 250 mg in 250 mL saline, infused over 2 h (instead of 1 h) |
--       No rash or hypotension; completed four further cycles uneventfully |
--       No hypersensitivity events | Cycle 1
--   2 | Methylprednisolone 40 mg IV, chlorpheniramine 10 mg IV, famotidine 50 mg IV |
--       Stepwise infusion: 10% dose over 30 min → observe 30 min → remaining 90% over 90 min |
--       Mild flushing during initial 10% infusion (resolved with extra antihistamine); full dose
--       completed without further events | No further events | Cycle 2
--   4 | Dexamethasone 10 mg IV, diphenhydramine 25 mg IV, famotidine 50 mg IV (1 h before
--       infusion) | Extended infusion to 2 h, with first 15 min at 5 mg/h |
--       Only transient pruritus; no hypotension or rash | Symptoms resolved with treatment |
--       Cycle 1
--
-- Table 4 has no protocol column.  `protocol` below is our reading of its "Infusion adjustment"
-- wording onto the contract's vocabulary (standard / extended = slowed rate / stepwise = graded
-- fraction then remainder / desensitization); `protocol_basis` quotes the words it rests on.
-- Cases 2 and 4 name it ("Stepwise infusion", "Extended infusion"); case 1 describes a slowed
-- rate ("over 2 h (instead of 1 h)").  No case is called desensitization or left at the
-- standard rate.
-- Table 4 gives no CTCAE grade and no explicit "completed" for case 4: `tier` is read from its
-- words (tier_basis).  Case 1: no reaction, completed -> tolerated.  Case 2: "Mild flushing",
-- "full dose completed" -> breakthrough (mild read as grade 1-2).  Case 4: "Only transient
-- pruritus", "Symptoms resolved with treatment"; completion is not stated in Table 4 but the
-- discussion counts her among the "three patients ... able to resume cadonilimab therapy" ->
-- breakthrough.  The paper's own figure: 3 rechallenged, 3 resumed (marts-v1: 3 of 3).
CREATE OR REPLACE VIEW staging.ref_seed_table4 AS
SELECT *
FROM (VALUES
    (1,
     'Dexamethasone 10 mg IV, diphenhydramine 25 mg IV, famotidine 50 mg IV (30 min before infusion)',
     'Cadonilimab 250 mg in 250 mL saline, infused over 2 h (instead of 1 h)',
     'No rash or hypotension; completed four further cycles uneventfully',
     'No hypersensitivity events',
     'Cycle 1',
     'extended', 'infused over 2 h (instead of 1 h): a slowed rate',
     true, false, true, 'tolerated',
     'no reaction ("No hypersensitivity events"); completed ("completed four further cycles uneventfully")'),
    (2,
     'Methylprednisolone 40 mg IV, chlorpheniramine 10 mg IV, famotidine 50 mg IV',
     'Stepwise infusion: 10% dose over 30 min → observe 30 min → remaining 90% over 90 min',
     'Mild flushing during initial 10% infusion (resolved with extra antihistamine); full dose completed without further events',
     'No further events',
     'Cycle 2',
     'stepwise', '"Stepwise infusion": a graded fraction, then the remainder',
     true, true, true, 'breakthrough',
     'a mild reaction ("Mild flushing"); completed ("full dose completed")'),
    (4,
     'Dexamethasone 10 mg IV, diphenhydramine 25 mg IV, famotidine 50 mg IV (1 h before infusion)',
     'Extended infusion to 2 h, with first 15 min at 5 mg/h',
     'Only transient pruritus; no hypotension or rash',
     'Symptoms resolved with treatment',
     'Cycle 1',
     'extended', '"Extended infusion to 2 h": a slowed rate (slower still for the first 15 min)',
     true, true, true, 'breakthrough',
     'a mild reaction ("Only transient pruritus"); completion not stated in Table 4, read from the ' ||
     'discussion ("three patients in our series were able to resume cadonilimab therapy")')
) AS t(case_no, premedication, infusion_adjustment, reaction_manifestation, outcome,
       treatment_cycle, protocol, protocol_basis, premedicated, reaction, completed, tier,
       tier_basis);
