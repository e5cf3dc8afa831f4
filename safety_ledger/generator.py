"""Deterministic synthetic multicenter submissions (contract site-submission-v1).

    generate(out, sites=4, patients=120, seed=7, submissions_per_site=3, ...)

writes `out/<site_id>/<submission_id>/` folders (`SITE-001`, `2024-07-01-001`, ...) with
submission_writer (CSV files, then manifest.json), exactly as a site would send them, and
returns a `GenerateSummary`
that says how many rows of each kind it wrote (valid first versions, re-sent
duplicates, corrections, invalid rows by the rule they break, retractions, late
parents) so that tests can compare what ingestion did against it.

Same arguments -> byte-identical files: the root stream `SeedSequence(seed)` draws the
sites' sizes and export times, and each site draws everything else, in a fixed order, from
its own stream `SeedSequence(seed).spawn(sites)[s]`; sorts are on unique keys or stable. So
the files do not depend on the `workers` processes that write the sites.

How it works, one site at a time (details, parameters and their sources in docs/generator.md):

1. Clinical truth, one numpy array per column, no per-row objects:
   patients (tumour type, regimen, sex, age, weight, first dose) -> irAEs drawn per
   patient (their onset decides discontinuation) -> infusions simulated cycle by cycle over
   all the site's patients at once (schedule, premedication, protocol, reaction risk,
   rechallenge after a reaction, stopping) -> reaction details (term, symptoms, treatment,
   outcome, onset) drawn per grade.
2. Each record lands in the first submission of its site exported after its
   `recorded_at`; the last export is the data cut-off.
3. Data-quality features, each on `round(rate x records)` records of every table of the
   site, disjoint: late parents (the infusion of a reaction is recorded and sent later than
   the reaction), invalid rows (exactly one one-row rule broken, see INVALID_RULES),
   retractions, corrections and duplicates (the last three in a later submission).
4. Records stay numbers until they are written: each table a chunk of rows at a time, as
   Arrow columns, through submission_writer's vectorized CSV path (no Python loop per row),
   the bytes cut into one file per submission; each submission's manifest last.

Clinical shape, in one paragraph: tumour types and regimens of the indications in the
seed paper's Table 3 (cervical with paclitaxel/platinum +/- bevacizumab, gastric/GEJ
with XELOX, SOX, FLOT, nab-paclitaxel or apatinib, HCC with lenvatinib or another TKI,
NSCLC with pemetrexed/carboplatin or anlotinib, NPC, SCLC, LCNEC, ESCC, endometrial,
rectal, some monotherapy); cycles every 3 weeks (some every 2), a few to about 20;
a reaction risk per infusion that peaks in cycles 2 and 3 (the paper's reactions came
"after the second or third dose") and is lower with premedication and with extended,
stepwise or desensitization protocols; grades mostly 1-2, some 3, rare 4, very rare 5;
onset mostly within 30 minutes; after a reaction most patients are rechallenged at the
next cycle with premedication and a slower protocol (Table 4: most tolerate, a
minority have a grade 1-2 breakthrough, a few fail); irAEs over months after the first
dose, hepatitis/thyroiditis/dermatitis/pneumonitis/colitis most common, ten_sjs rare.
"""
from __future__ import annotations

import argparse
import ctypes
import functools
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from . import contract
from .values import fixed_width_texts
from .submission_writer import (Chunks, CsvWriter, Patched, _place, _place_bytes, cell_texts, encode_rows, string_array,
                                write_csv, write_manifest)

# --------------------------------------------------------------------------------------
# Calendar. Times are int64 seconds of the site's local wall clock (UTC+08:00 for every
# synthetic site); dates are int64 days since 1970-01-01.
# --------------------------------------------------------------------------------------
UTC_OFFSET = "+08:00"
UTC_OFFSET_SECONDS = 8 * 3600
DAY = 86_400
START_DAY = int(np.datetime64("2024-01-01", "D").astype(np.int64))      # first possible first dose
CUTOFF_DAY = int(np.datetime64("2025-06-30", "D").astype(np.int64))     # the last export (data cut-off)
ENROLMENT_END_DAY = CUTOFF_DAY - 30                                     # last possible first dose
LAST_INFUSION_DAY = CUTOFF_DAY - 2                                      # infusions after it are not yet recorded
EXPORT_SECOND = 17 * 3600                                               # exports run from 17:00 local

# --------------------------------------------------------------------------------------
# Clinical parameters (docs/generator.md gives the source or the reason for each).
# --------------------------------------------------------------------------------------
TUMOR_MIX = {  # share of patients
    "cervical": 0.28, "gastric_gej": 0.26, "hcc": 0.10, "nsclc": 0.10, "npc": 0.05,
    "escc": 0.05, "sclc": 0.04, "lcnec": 0.01, "endometrial": 0.04, "rectal": 0.03,
    "biliary": 0.02, "other": 0.02,
}
MALE_SHARE = {
    "cervical": 0.0, "gastric_gej": 0.70, "hcc": 0.85, "nsclc": 0.68, "npc": 0.72, "escc": 0.80,
    "sclc": 0.82, "lcnec": 0.80, "endometrial": 0.0, "rectal": 0.60, "biliary": 0.50, "other": 0.50,
}
SEX_UNKNOWN_SHARE = 0.003


@dataclass(frozen=True)
class Regimen:
    """What is given with cadonilimab. `induction` agents for the first `induction_cycles`
    cycles (None: every cycle), then `maintenance`; `first_cycle_extra` only in cycle 1."""
    tumor: str
    name: str
    share: float  # within the tumour type
    induction: tuple[str, ...] = ()
    induction_cycles: int | None = None
    maintenance: tuple[str, ...] = ()
    first_cycle_extra: tuple[str, ...] = ()
    interval_days: int = 21
    mg_per_kg: float = 10.0
    max_cycles: int = 24
    q2w_share: float = 0.0  # share of patients on 6 mg/kg every 2 weeks instead


PTX_CIS, PTX_CARBO = ("paclitaxel", "cisplatin"), ("paclitaxel", "carboplatin")
REGIMENS: tuple[Regimen, ...] = (
    # cervical: COMPASSION-16 / -13 (platinum chemotherapy +/- bevacizumab); cases 3 and 4
    Regimen("cervical", "paclitaxel_cisplatin", 0.22, PTX_CIS, 6),
    Regimen("cervical", "paclitaxel_carboplatin", 0.20, PTX_CARBO, 6),
    Regimen("cervical", "paclitaxel_cisplatin_bevacizumab", 0.15, PTX_CIS + ("bevacizumab",), 6, ("bevacizumab",)),
    Regimen("cervical", "paclitaxel_carboplatin_bevacizumab", 0.15, PTX_CARBO + ("bevacizumab",), 6, ("bevacizumab",)),
    Regimen("cervical", "monotherapy", 0.28, q2w_share=0.3),
    # gastric/GEJ: COMPASSION-04 and the phase III (XELOX), SOX (neoadjuvant too), FLOT,
    # nab-paclitaxel second line, apatinib (Table 2 no. 4; case 2 with capecitabine)
    Regimen("gastric_gej", "xelox", 0.42, ("capecitabine", "oxaliplatin"), 6, ("capecitabine",)),
    Regimen("gastric_gej", "sox", 0.20, ("s1", "oxaliplatin"), 6, ("s1",)),
    Regimen("gastric_gej", "sox_neoadjuvant", 0.06, ("s1", "oxaliplatin"), max_cycles=4),
    Regimen("gastric_gej", "flot_neoadjuvant", 0.05, ("docetaxel", "oxaliplatin", "fluorouracil", "leucovorin"),
            interval_days=14, mg_per_kg=6.0, max_cycles=4),
    Regimen("gastric_gej", "nab_paclitaxel", 0.09, ("nab_paclitaxel",), 6),
    Regimen("gastric_gej", "capecitabine_apatinib", 0.08, ("capecitabine", "apatinib")),
    Regimen("gastric_gej", "apatinib", 0.05, ("apatinib",)),
    Regimen("gastric_gej", "monotherapy", 0.05, q2w_share=0.3),
    # HCC: COMPASSION-08 (lenvatinib), real-world cadonilimab + TKI, COMPASSION-03
    Regimen("hcc", "lenvatinib", 0.60, ("lenvatinib",)),
    Regimen("hcc", "apatinib", 0.10, ("apatinib",)),
    Regimen("hcc", "regorafenib", 0.10, ("regorafenib",)),
    Regimen("hcc", "monotherapy", 0.20, q2w_share=0.3),
    # NSCLC: AK104-202 (with chemotherapy), cadonilimab + anlotinib, case 1 (monotherapy)
    Regimen("nsclc", "pemetrexed_carboplatin", 0.35, ("pemetrexed", "carboplatin"), 4, ("pemetrexed",)),
    Regimen("nsclc", "paclitaxel_carboplatin", 0.15, PTX_CARBO, 4),
    Regimen("nsclc", "anlotinib", 0.30, ("anlotinib",)),
    Regimen("nsclc", "monotherapy", 0.20, q2w_share=0.3),
    # SCLC: phase II in ES-SCLC; LCNEC: Table 2 no. 6 (anlotinib)
    Regimen("sclc", "etoposide_carboplatin", 0.70, ("etoposide", "carboplatin"), 4),
    Regimen("sclc", "anlotinib", 0.15, ("anlotinib",)),
    Regimen("sclc", "monotherapy", 0.15),
    Regimen("lcnec", "anlotinib", 0.60, ("anlotinib",)),
    Regimen("lcnec", "etoposide_carboplatin", 0.40, ("etoposide", "carboplatin"), 4),
    # NPC: COMPASSION-06 (previously treated, monotherapy)
    Regimen("npc", "monotherapy", 0.70, q2w_share=0.3),
    Regimen("npc", "gemcitabine_cisplatin", 0.30, ("gemcitabine", "cisplatin"), 6),
    # ESCC: COMPASSION-03
    Regimen("escc", "monotherapy", 0.40, q2w_share=0.3),
    Regimen("escc", "paclitaxel_cisplatin", 0.45, PTX_CIS, 6),
    Regimen("escc", "fluorouracil_cisplatin", 0.15, ("fluorouracil", "cisplatin"), 6),
    # endometrial: Table 3 no. 11 (with chemotherapy)
    Regimen("endometrial", "paclitaxel_carboplatin", 0.75, PTX_CARBO, 6),
    Regimen("endometrial", "lenvatinib", 0.25, ("lenvatinib",)),
    # rectal: Table 3 no. 12 (short-course radiotherapy, then chemotherapy)
    Regimen("rectal", "scrt_capox", 0.70, ("capecitabine", "oxaliplatin"), first_cycle_extra=("radiotherapy",),
            max_cycles=6),
    Regimen("rectal", "capox", 0.30, ("capecitabine", "oxaliplatin"), max_cycles=6),
    # biliary and other: not in the paper (assumption)
    Regimen("biliary", "gemcitabine_cisplatin", 0.80, ("gemcitabine", "cisplatin"), 8),
    Regimen("biliary", "monotherapy", 0.20),
    Regimen("other", "monotherapy", 0.60, q2w_share=0.3),
    Regimen("other", "other", 0.40, ("other",)),
)

PLANNED_CYCLES_P = 0.11   # planned cycles = 1 + geometric(p), capped by the regimen and MAX_CYCLES
MAX_CYCLES = 24
STANDARD_DURATION = ((60, 0.85), (90, 0.10), (30, 0.05))  # minutes; 30 only from cycle 3 on
PROTOCOL_DURATION = {"standard": None, "extended": 120, "stepwise": 150, "desensitization": 360}
CAUTIOUS_FIRST_INFUSION = 0.03   # share of first infusions given with the extended protocol

# premedication sets (lists as written); index 0 is none
PREMED_SETS = (
    (),
    ("dexamethasone", "diphenhydramine", "famotidine"),            # paclitaxel standard; Table 4 cases 1, 4
    ("methylprednisolone", "chlorpheniramine", "famotidine"),       # Table 4 case 2
    ("dexamethasone", "diphenhydramine", "famotidine", "montelukast"),
    ("dexamethasone",),
    ("diphenhydramine",),
    ("promethazine",),
    ("dexamethasone", "promethazine"),
    ("cetirizine", "acetaminophen"),
)
PREMED_PACLITAXEL = 1
PREMED_PACLITAXEL_P = 0.95
ROUTINE_PREMED_SETS = (4, 5, 6, 7, 8, 1)         # what a site gives "routinely"
SITE_ROUTINE_PREMED = (0.05, 0.45)               # uniform range of a site's share of patients

# reaction risk per infusion (standard protocol, no premedication, average site)
REACTION_RISK_BY_CYCLE = (0.020, 0.050, 0.045, 0.025, 0.018)  # cycles 1..5
REACTION_RISK_LATER = 0.010                                    # cycles >= 6
PREMEDICATION_RR = 0.40
PROTOCOL_RR = {"standard": 1.0, "extended": 0.60, "stepwise": 0.45, "desensitization": 0.30}
SENSITIZED_RR = 2.0        # infusions after a patient's rechallenge
SITE_RR_SIGMA = 0.25       # lognormal site effect
GRADE_P = (0.45, 0.40, 0.12, 0.027, 0.003)   # grades 1..5 of a reaction outside a rechallenge
ONSET_EARLY_P = 0.80       # onset within the first 30 minutes
COMPLETED_AFTER_GRADE2_P = 0.60   # grade 2: interrupted, then resumed slower and completed
COMPLETED_WITHOUT_REACTION_P = 0.995

# after a reaction
STOP_AFTER_REACTION_P = (0.08, 0.15, 0.40, 0.75, 1.0)   # by grade 1..5
RECHALLENGE_PREMED = {"1-2": ((1, 0.6), (2, 0.4)), "3+": ((3, 0.5), (2, 0.5))}
RECHALLENGE_PROTOCOL = {"1-2": (("extended", 0.55), ("stepwise", 0.30), ("desensitization", 0.15)),
                        "3+": (("extended", 0.20), ("stepwise", 0.40), ("desensitization", 0.40))}
RECHALLENGE_OUTCOME_P = (0.70, 0.22, 0.08)   # tolerated, breakthrough (grade 1-2), failed
BREAKTHROUGH_GRADE_P = (0.65, 0.35)          # grades 1, 2 (completed)
FAILED_GRADE_P = (0.40, 0.50, 0.10)          # grade 2 not completed, grade 3, grade 4
STOP_AFTER_FAILED_RECHALLENGE_P = 0.70       # else continue with desensitization

TERM_P = {  # by grade band; CTCAE v5 grades anaphylaxis 3 to 5 only
    "1-2": {"infusion_related_reaction": 0.72, "allergic_reaction": 0.23, "cytokine_release_syndrome": 0.05},
    "3-4": {"infusion_related_reaction": 0.40, "anaphylaxis": 0.35, "allergic_reaction": 0.20,
            "cytokine_release_syndrome": 0.05},
    "5": {"infusion_related_reaction": 0.20, "anaphylaxis": 0.60, "cytokine_release_syndrome": 0.20}}
SYMPTOM_P = {
    "1": {"rash": 0.35, "pruritus": 0.35, "flushing": 0.30, "urticaria": 0.12, "chills": 0.15,
          "fever": 0.12, "headache": 0.05, "nausea": 0.05, "dizziness": 0.06},
    "2": {"rash": 0.30, "pruritus": 0.30, "flushing": 0.25, "urticaria": 0.15, "chills": 0.25,
          "rigors": 0.12, "fever": 0.20, "chest_tightness": 0.30, "dyspnea": 0.20, "tachycardia": 0.15,
          "dizziness": 0.15, "back_pain": 0.05, "nausea": 0.10, "vomiting": 0.05, "abdominal_pain": 0.06,
          "hypertension": 0.04, "weakness": 0.05},
    "3+": {"hypotension": 0.80, "dyspnea": 0.50, "chest_tightness": 0.40, "bronchospasm": 0.20,
           "hypoxia": 0.25, "angioedema": 0.15, "rash": 0.35, "pruritus": 0.30, "urticaria": 0.20,
           "flushing": 0.20, "tachycardia": 0.30, "syncope": 0.08, "dizziness": 0.20,
           "abdominal_pain": 0.15, "vomiting": 0.10, "weakness": 0.10},
}
SYMPTOM_FALLBACK = {"1": "rash", "2": "chest_tightness", "3+": "hypotension"}
TREATMENT_P = {  # infusion_stopped / infusion_slowed follow `completed`, see _reaction_details
    "1": {"diphenhydramine": 0.30, "chlorpheniramine": 0.15, "promethazine": 0.10},
    "2": {"dexamethasone": 0.60, "methylprednisolone": 0.30, "diphenhydramine": 0.40,
          "chlorpheniramine": 0.20, "promethazine": 0.25, "famotidine": 0.20, "iv_fluids": 0.30,
          "oxygen": 0.10},
    "3": {"methylprednisolone": 0.70, "dexamethasone": 0.60, "promethazine": 0.40,
          "diphenhydramine": 0.30, "famotidine": 0.30, "iv_fluids": 0.80, "oxygen": 0.50,
          "epinephrine": 0.30, "bronchodilator": 0.15},
    "4+": {"methylprednisolone": 0.80, "dexamethasone": 0.50, "promethazine": 0.30,
           "epinephrine": 0.90, "iv_fluids": 1.0, "oxygen": 0.90, "vasopressor": 0.60,
           "icu_admission": 0.60, "bronchodilator": 0.20},
}
REACTION_OUTCOME_P = {  # recovered, recovering, not_recovered (fatal iff grade 5)
    1: (0.95, 0.05, 0.0), 2: (0.92, 0.08, 0.0), 3: (0.80, 0.18, 0.02), 4: (0.65, 0.25, 0.10)}

# irAEs
IRAE_PER_PATIENT = 0.50            # Poisson mean before the exposure window is applied
IRAE_ONSET_DAYS = (7, 1.6, 55.0)   # minimum, gamma shape, gamma scale (median about 2.7 months)
IRAE_AFTER_LAST_DOSE_DAYS = 90
IRAE_CATEGORY_P = {
    "thyroiditis": 0.20, "hepatitis": 0.18, "dermatitis": 0.18, "pneumonitis": 0.10, "colitis": 0.10,
    "hypophysitis": 0.03, "adrenal_insufficiency": 0.03, "arthritis": 0.03, "nephritis": 0.02,
    "pancreatitis": 0.02, "myositis": 0.015, "type1_diabetes": 0.01, "myocarditis": 0.01,
    "ten_sjs": 0.005, "other": 0.07,
}
IRAE_GRADE_P = {  # grades 1..5
    "default": (0.45, 0.37, 0.14, 0.035, 0.005),
    "thyroiditis": (0.50, 0.45, 0.05, 0.0, 0.0),
    "ten_sjs": (0.0, 0.0, 0.60, 0.30, 0.10),
    "myocarditis": (0.0, 0.30, 0.40, 0.20, 0.10),
}
ENDOCRINE = ("thyroiditis", "hypophysitis", "adrenal_insufficiency", "type1_diabetes")
IRAE_ESCALATION = {  # grade >= 3: extra agent and its probability
    "colitis": (("infliximab", 0.40),), "hepatitis": (("mycophenolate", 0.35),),
    "myocarditis": (("ivig", 0.40), ("mycophenolate", 0.20)), "myositis": (("ivig", 0.40),),
    "ten_sjs": (("adalimumab", 0.30), ("ivig", 0.30)),
    "pneumonitis": (("infliximab", 0.15), ("tocilizumab", 0.05)), "arthritis": (("tocilizumab", 0.20),),
}
IRAE_DISCONTINUE_P = 0.60          # grade >= 3 (non-endocrine): drug_discontinued, else drug_withheld
IRAE_OUTCOME_P = {"1-2": (0.70, 0.25, 0.05), "3-4": (0.55, 0.30, 0.15), "endocrine": (0.30, 0.20, 0.50)}

RETRACTION_REASONS = {
    "patient": ("entered in error", "duplicate record under a second reference", "test record"),
    "infusion": ("entered in error", "wrong patient", "infusion not given (scheduled only)"),
    "reaction": ("entered in error", "wrong patient", "not a reaction: pre-existing symptom"),
    "irae": ("entered in error", "wrong patient", "not immune-related on review"),
}

DEFAULTS = dict(submissions_per_site=3, duplicate_rate=0.02, correction_rate=0.02,
                retraction_rate=0.005, late_parent_rate=0.05, invalid_rate=0.01)

TABLES = ("patients", "infusions", "reactions", "iraes")
FILE = {t: f"{t}.csv" for t in TABLES}
RECORD_TYPE = {"patients": "patient", "infusions": "infusion", "reactions": "reaction", "iraes": "irae"}
KEY = {"patients": "patient_ref", "infusions": "infusion_ref", "reactions": "reaction_ref", "iraes": "irae_ref"}

# row kinds
VALID, INVALID, CORRECTION, DUPLICATE = 0, 1, 2, 3


# --------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SubmissionSummary:
    site_id: str
    submission_id: str
    exported_at: str
    rows: dict[str, int]     # file -> data rows, as in the manifest
    valid: int               # first versions passing every one-row rule
    corrections: int
    duplicates: int
    invalid: int
    retractions: int

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


@dataclass(frozen=True)
class InvalidRow:
    site_id: str
    submission_id: str
    file: str
    row: int                 # 1-based data row (header excluded), as ingestion numbers them
    rule: str                # e.g. infusions.cycle.range


@dataclass(frozen=True)
class GenerateSummary:
    """How many rows of each kind were written. Every row is exactly one of: valid (a
    record's first version, passing every one-row rule), correction, duplicate, invalid
    or retraction; `late_parents` and `orphans` count some of the valid rows again."""
    out: Path
    seed: int
    sites: tuple[str, ...]
    submissions_per_site: int
    submissions: tuple[SubmissionSummary, ...]
    rows: dict[str, int]          # file -> data rows over all submissions
    valid: dict[str, int]         # file -> valid first versions
    corrections: dict[str, int]   # file -> correction rows (same key, later recorded_at, one field changed)
    duplicates: dict[str, int]    # file -> rows re-sent unchanged in a later submission
    invalid: dict[str, int]       # rule -> rows breaking exactly that rule
    retractions: dict[str, int]   # record_type -> retraction rows
    late_parents: int             # reactions sent in an earlier submission than their infusion
    orphans: dict[str, int]       # file -> valid records whose parent (or its parent) exists only as an invalid row
    clinical: dict[str, int]      # counts of the simulated truth (before data-quality features)
    invalid_rows: tuple[InvalidRow, ...] = field(repr=False, default=())

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def expected_events(self) -> int:
        """Rows that should become events: valid + corrections + retractions."""
        return sum(self.valid.values()) + sum(self.corrections.values()) + sum(self.retractions.values())

    @property
    def expected_duplicates(self) -> int:
        return sum(self.duplicates.values())

    @property
    def expected_quarantined(self) -> int:
        return sum(self.invalid.values())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["out"] = str(self.out)
        d.pop("invalid_rows")
        d["total_rows"] = self.total_rows
        d["expected_events"] = self.expected_events
        d["expected_duplicates"] = self.expected_duplicates
        d["expected_quarantined"] = self.expected_quarantined
        return d


# --------------------------------------------------------------------------------------
# Small vectorized helpers
# --------------------------------------------------------------------------------------
def _norm(p) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return p / p.sum()


@functools.lru_cache(maxsize=256)
def _cdf(p: tuple[float, ...]) -> tuple[float, ...]:
    cdf = np.cumsum(_norm(p))
    cdf /= cdf[-1]
    return tuple(cdf[:-1].tolist())


def _pick(rng: np.random.Generator, p, size: int) -> np.ndarray:
    """`size` draws of a categorical distribution `p` (indices): the draws of
    rng.choice(len(p), size, p=p), without its binary search."""
    u = rng.random(size)
    out = np.zeros(size, dtype=np.int64)
    for c in _cdf(p if isinstance(p, tuple) else tuple(p)):
        out += u >= c
    return out


def _pick_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of `probs` (n x k)."""
    n = probs.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cum = np.cumsum(probs, axis=1)
    cum = cum / cum[:, -1:]
    u = rng.random(n)
    return np.minimum((cum < u[:, None]).sum(axis=1), probs.shape[1] - 1)


def _join_bits(bits: np.ndarray, vocab: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Rows of booleans (n x len(vocab)) -> (code per row, texts): the ';'-joined tokens
    in vocabulary order of row i are texts[code[i]]."""
    if bits.shape[0] == 0:
        return np.zeros(0, dtype=np.int32), ("",)
    masks = bits.astype(np.int64) @ (np.int64(1) << np.arange(len(vocab), dtype=np.int64))
    uniq, inverse = np.unique(masks, return_inverse=True)
    text = tuple(";".join(v for j, v in enumerate(vocab) if (m >> j) & 1) for m in uniq.tolist())
    return inverse.reshape(-1).astype(np.int32), text


def _prob_matrix(rows: list[dict[str, float]], which: np.ndarray, vocab: tuple[str, ...]) -> np.ndarray:
    """Per-row token probabilities: `which[i]` selects one dict of `rows`."""
    table = np.array([[r.get(v, 0.0) for v in vocab] for r in rows], dtype=float)
    return table[which]


# Cells are Arrow arrays in the types submission_writer formats (see its table): a
# timestamp[s, +08:00], a date32, an integer, a decimal with one place, a dictionary of
# strings; `_text` gives their cell text for the few rows that need it as Python strings.
TIMESTAMP = pa.timestamp("s", tz=UTC_OFFSET)
WEIGHT = pa.decimal128(18, 1)


def _numeric(arrow_type: pa.DataType, values: np.ndarray) -> pa.Array:
    """A numpy array as an Arrow array of that type, without copying or converting."""
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(values)])


def _ts_array(seconds: np.ndarray) -> pa.Array:
    """Local wall-clock seconds -> timestamps at UTC_OFFSET (written 2024-03-05T09:40:00+08:00)."""
    return _numeric(TIMESTAMP, np.asarray(seconds, dtype=np.int64) - UTC_OFFSET_SECONDS)


def _date_array(days: np.ndarray) -> pa.Array:
    return _numeric(pa.date32(), np.asarray(days, dtype=np.int32))


def _int_array(a: np.ndarray) -> pa.Array:
    return _numeric(pa.int64(), np.asarray(a, dtype=np.int64))


def _dose_array(dose: np.ndarray) -> pa.Array:
    """Doses are whole multiples of 5 mg: written as integers ('375', as '%g' would)."""
    whole = np.rint(np.asarray(dose, dtype=float))
    assert (whole == dose).all(), "a dose that is not a whole number of mg"
    return _int_array(whole.astype(np.int64))


def _weight_array(weight: np.ndarray) -> pa.Array:
    """kg with one decimal ('56.0', as '%.1f' would), null where not recorded."""
    weight = np.asarray(weight, dtype=float)
    missing = np.isnan(weight)
    tenths = np.rint(np.nan_to_num(weight) * 10).astype(np.int64)
    words = np.empty((len(weight), 2), dtype=np.int64)
    words[:, 0], words[:, 1] = tenths, tenths >> 63
    validity = None
    if missing.any():
        validity = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    return pa.Array.from_buffers(WEIGHT, len(weight), [validity, pa.py_buffer(words)],
                                 null_count=int(missing.sum()))


_DICTIONARIES: dict[tuple[str, ...], pa.Array] = {}


def _enum_array(codes: np.ndarray, vocab: tuple[str, ...]) -> pa.Array:
    """Codes into `vocab` -> a dictionary array (each text formatted once)."""
    if vocab not in _DICTIONARIES:
        _DICTIONARIES[vocab] = string_array(vocab)
    dictionary = _DICTIONARIES[vocab]
    codes = np.ascontiguousarray(codes, dtype=np.int32)
    return pa.DictionaryArray.from_buffers(pa.dictionary(pa.int32(), dictionary.type), len(codes),
                                           [None, pa.py_buffer(codes)], dictionary)


def _ref_array(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """prefix + the number zero-padded to `width` digits (wider if it must be)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    n, head = len(numbers), prefix.encode()
    if n and (numbers.min() < 0 or numbers.max() >= 10 ** width):
        return string_array([prefix + str(v).zfill(width) for v in numbers.tolist()])
    cells = np.empty((n, len(head) + width), dtype=np.uint8)
    _place_bytes(cells, 0, head)
    _place(cells, len(head), _digit_cells(numbers, width))
    return fixed_width_texts(cells)


_FOUR_DIGITS = np.array([list(f"{v:04d}".encode()) for v in range(10_000)], dtype=np.uint8).view(np.uint32).reshape(-1)


def _digit_cells(numbers: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers below 10**width -> (n x width) zero-padded ASCII digits,
    four at a time from a table."""
    n = len(numbers)
    groups = -(-width // 4)
    out = np.empty((n, groups), dtype=np.uint32)
    x = np.asarray(numbers, dtype=np.int64)
    for j in range(groups - 1, -1, -1):
        x, low = np.divmod(x, 10_000)
        out[:, j] = np.take(_FOUR_DIGITS, low)
    return out.view(np.uint8).reshape(n, groups * 4)[:, groups * 4 - width:]


def _text(arr: pa.Array) -> np.ndarray:
    """The cells' text as an object array (for the few rows a data-quality feature changes)."""
    return np.array(cell_texts(arr), dtype=object)


def _ts(seconds: np.ndarray) -> np.ndarray:
    return _text(_ts_array(seconds))


def _date(days: np.ndarray) -> np.ndarray:
    return _text(_date_array(days))


def _ints(a: np.ndarray) -> np.ndarray:
    return _text(_int_array(a))


def _busday(days: np.ndarray) -> np.ndarray:
    """Roll dates falling on a Saturday or Sunday forward to Monday."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    return np.busday_offset(d, 0, roll="forward").astype(np.int64)


def _in_order(*keys: np.ndarray) -> bool:
    """Are the rows already sorted by keys (the first most significant)?"""
    n = len(keys[0])
    if n < 2:
        return True
    undecided = np.ones(n - 1, dtype=bool)
    for k in keys:
        a, b = k[:-1], k[1:]
        if (undecided & (a > b)).any():
            return False
        undecided &= a == b
    return True


def _sort_order(*keys: np.ndarray) -> np.ndarray:
    """The order sorting rows by keys (the first most significant; non-negative integers,
    no two rows equal on all of them): one argsort of a combined int64 key when the keys fit in
    63 bits, else a lexsort."""
    spans = [int(k.max()) + 1 if len(k) else 1 for k in keys]
    if all(len(k) == 0 or k.min() >= 0 for k in keys) and np.prod([float(s) for s in spans]) < 2.0 ** 62:
        combined = np.zeros(len(keys[0]), dtype=np.int64)
        for k, span in zip(keys, spans):
            combined = combined * span + k
        return np.argsort(combined)
    return np.lexsort(tuple(reversed(keys)))


def _rank_within(group: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """1-based rank of each element within its group, ordered by keys (stable)."""
    n = len(group)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if _in_order(group, *keys):
        order = np.arange(n)
    else:
        order = np.lexsort(tuple(reversed(keys)) + (group,)) if keys else np.argsort(group, kind="stable")
    g = group[order]
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, n]))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - first + 1
    return rank


def _choose(rng: np.random.Generator, eligible: np.ndarray, count: int) -> np.ndarray:
    """`count` of the `eligible` indices (fewer if not enough), sorted."""
    count = min(count, len(eligible))
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.sort(rng.choice(eligible, size=count, replace=False))


def _in_window(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A second strictly inside (lo, hi), at least a minute from each end when possible."""
    lo, hi = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
    margin = np.minimum(60, (hi - lo) // 3)
    return lo + margin + (rng.random(len(lo)) * np.maximum(hi - lo - 2 * margin, 1)).astype(np.int64)


# --------------------------------------------------------------------------------------
# 1. Clinical truth
# --------------------------------------------------------------------------------------
@dataclass
class _Truth:
    n_sites: int
    p: dict[str, np.ndarray]   # patients
    i: dict[str, np.ndarray]   # infusions
    r: dict[str, np.ndarray]   # reactions
    e: dict[str, np.ndarray]   # irAEs
    texts: dict[str, tuple[str, ...]]   # list cells: codes in i, r, e index these


def _simulate(rng: np.random.Generator, n_sites: int, n_patients: int) -> _Truth:
    tumors = tuple(TUMOR_MIX)
    # sites: size, reaction-risk effect, share of patients on routine premedication
    site_weight = rng.dirichlet(np.full(n_sites, 8.0))
    site_rr = np.exp(rng.normal(0.0, SITE_RR_SIGMA, n_sites))
    site_routine = rng.uniform(*SITE_ROUTINE_PREMED, n_sites)

    # patients, ordered by site then first dose (so that medical record numbers ascend)
    site = np.repeat(np.arange(n_sites), rng.multinomial(n_patients, site_weight))
    first_day = _busday(rng.integers(START_DAY, ENROLMENT_END_DAY + 1, n_patients))
    order = np.lexsort((first_day, site))
    site, first_day = site[order], first_day[order]
    n = n_patients

    tumor = _pick(rng, [TUMOR_MIX[t] for t in tumors], n)
    male = rng.random(n) < np.array([MALE_SHARE[t] for t in tumors])[tumor]
    sex = np.where(male, 1, 0)                       # index into contract.SEX
    sex = np.where(rng.random(n) < SEX_UNKNOWN_SHARE, 2, sex)
    age_mean = np.where(np.array(tumors)[tumor] == "cervical", 52.0, 60.0)
    age = np.clip(np.rint(rng.normal(age_mean, 10.0)), 18, 90)
    age = np.where(rng.random(n) < 0.005, rng.integers(85, 93, n), age).astype(np.int64)
    weight = np.where(male, rng.normal(66.0, 11.0, n), rng.normal(56.0, 9.0, n))
    weight = np.round(np.clip(weight, 35.0, 130.0), 1)
    weight_recorded = np.where(rng.random(n) < 0.03, np.nan, weight)

    # regimen within tumour type
    reg_tumor = np.array([tumors.index(r.tumor) for r in REGIMENS])
    regimen = np.zeros(n, dtype=np.int64)
    for t in range(len(tumors)):
        members = np.flatnonzero(reg_tumor == t)
        who = np.flatnonzero(tumor == t)
        regimen[who] = members[_pick(rng, [REGIMENS[m].share for m in members], len(who))]
    q2w = rng.random(n) < np.array([r.q2w_share for r in REGIMENS])[regimen]
    interval = np.where(q2w, 14, np.array([r.interval_days for r in REGIMENS])[regimen])
    mg_per_kg = np.where(q2w, 6.0, np.array([r.mg_per_kg for r in REGIMENS])[regimen])
    dose = np.clip(np.rint(mg_per_kg * weight / 5.0) * 5.0, 5.0, 3000.0)
    planned = np.minimum(1 + rng.geometric(PLANNED_CYCLES_P, n),
                         np.array([r.max_cycles for r in REGIMENS])[regimen])
    planned = np.minimum(planned, MAX_CYCLES)
    std_duration = np.array([d for d, _ in STANDARD_DURATION])[_pick(rng, [p for _, p in STANDARD_DURATION], n)]
    routine = np.where(rng.random(n) < site_routine[site],
                       np.array(ROUTINE_PREMED_SETS)[rng.integers(0, len(ROUTINE_PREMED_SETS), n)], 0)
    cautious = rng.random(n) < CAUTIOUS_FIRST_INFUSION

    # combination lists: one string table, three indices per regimen
    combos: list[str] = []

    def combo_id(agents: tuple[str, ...]) -> int:
        text = ";".join(agents)
        if text not in combos:
            combos.append(text)
        return combos.index(text)

    reg_ind = np.array([combo_id(r.induction) for r in REGIMENS])
    reg_maint = np.array([combo_id(r.maintenance if r.induction_cycles else r.induction) for r in REGIMENS])
    reg_first = np.array([combo_id(r.induction + r.first_cycle_extra) for r in REGIMENS])
    reg_ind_cycles = np.array([r.induction_cycles or MAX_CYCLES for r in REGIMENS])
    reg_paclitaxel = np.array(["paclitaxel" in r.induction for r in REGIMENS])

    # irAEs first: a discontinuing one ends the patient's treatment at its onset
    e, irae_treatment = _simulate_iraes(rng, n)
    stop_day = np.full(n, np.iinfo(np.int64).max)
    disc = e["discontinue"]
    np.minimum.at(stop_day, e["patient"][disc], first_day[e["patient"][disc]] + e["offset"][disc])

    # infusions, cycle by cycle over all patients at once
    i = _simulate_infusions(rng, n, site, first_day, regimen, interval, dose, planned, std_duration,
                            routine, cautious, site_rr, stop_day, reg_ind, reg_maint, reg_first,
                            reg_ind_cycles, reg_paclitaxel)
    # order infusions by site, start, patient and number them within the site
    order = _sort_order(site[i["patient"]], i["start"], i["patient"])
    i = {k: v[order] for k, v in i.items()}
    texts = {"combination": tuple(combos), "premedication": tuple(";".join(s) for s in PREMED_SETS),
             "irae_treatment": irae_treatment}

    r, texts["symptoms"], texts["reaction_treatment"] = _reaction_details(rng, i)

    # irAEs: keep those within the exposure window, before death and recorded by the cut-off
    last_day = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last_day, i["patient"], i["start"] // DAY)
    death_day = np.full(n, np.iinfo(np.int64).max)
    fatal_inf = np.flatnonzero(i["grade"] == 5)
    np.minimum.at(death_day, i["patient"][fatal_inf], i["start"][fatal_inf] // DAY)
    onset_day = first_day[e["patient"]] + e["offset"]
    keep = (onset_day <= last_day[e["patient"]] + IRAE_AFTER_LAST_DOSE_DAYS) & (onset_day <= death_day[e["patient"]])
    fatal_irae = keep & (e["grade"] == 5)
    np.minimum.at(death_day, e["patient"][fatal_irae], onset_day[fatal_irae])
    keep &= onset_day <= death_day[e["patient"]]
    e["onset_day"] = onset_day
    e["recorded"] = (onset_day + rng.integers(1, 22, len(onset_day))) * DAY + rng.integers(9 * 3600, 18 * 3600, len(onset_day))
    keep &= e["recorded"] < CUTOFF_DAY * DAY + EXPORT_SECOND
    e = {k: v[keep] for k, v in e.items()}
    order = np.lexsort((e["patient"], e["onset_day"], site[e["patient"]]))
    e = {k: v[order] for k, v in e.items()}

    # medical record numbers: ascending within the site from a per-site start, with gaps
    # (the hospital's other patients)
    mrn_start = rng.integers(1_000_000, 3_000_000, n_sites)
    steps = np.cumsum(rng.integers(1, 40, n))
    group_start = np.searchsorted(site, site, side="left")
    mrn = mrn_start[site] + steps - np.where(group_start > 0, steps[group_start - 1], 0)
    p = dict(site=site, first_day=first_day, tumor=tumor, sex=sex, age=age, weight=weight_recorded,
             regimen=regimen, planned=planned, mrn=mrn)
    # the patient is registered on the day of the first dose, after the infusion starts
    first_start = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_start, i["patient"], i["start"])
    p["recorded"] = first_start + rng.integers(5 * 60, 55 * 60, n)
    return _Truth(n_sites, p, i, r, e, texts)


def _simulate_iraes(rng: np.random.Generator, n: int) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    cats = contract.IRAE_CATEGORIES
    count = rng.poisson(IRAE_PER_PATIENT, n)
    patient = np.repeat(np.arange(n), count)
    k = len(patient)
    minimum, shape, scale = IRAE_ONSET_DAYS
    offset = (minimum + rng.gamma(shape, scale, k)).astype(np.int64)
    category = _pick(rng, [IRAE_CATEGORY_P.get(c, 0.0) for c in cats], k)
    grade_p = np.array([IRAE_GRADE_P.get(c, IRAE_GRADE_P["default"]) for c in cats])
    grade = _pick_rows(rng, grade_p[category]) + 1
    cat_name = np.array(cats, dtype=object)[category]
    endocrine = np.isin(cat_name, ENDOCRINE)

    vocab = contract.IRAE_TREATMENT
    col = {t: j for j, t in enumerate(vocab)}
    bits = np.zeros((k, len(vocab)), dtype=bool)
    u = rng.random((k, 4))
    # endocrine: hormone replacement (insulin for type 1 diabetes), steroids for hypophysitis >= 2
    hormone = endocrine & (cat_name != "type1_diabetes") & ((grade >= 2) | (u[:, 0] < 0.5))
    bits[:, col["hormone_replacement"]] = hormone
    bits[:, col["insulin"]] = cat_name == "type1_diabetes"
    steroid = (~endocrine & (grade >= 2)) | ((cat_name == "hypophysitis") & (grade >= 2))
    bits[:, col["corticosteroids"]] = steroid
    severe = (grade >= 3) & ~endocrine
    discontinued = (severe & (u[:, 1] < IRAE_DISCONTINUE_P)) | (grade >= 4)
    bits[:, col["drug_discontinued"]] = discontinued
    bits[:, col["drug_withheld"]] = ~discontinued & (grade >= 2) & ~endocrine
    for category_name, agents in IRAE_ESCALATION.items():
        who = (cat_name == category_name) & (grade >= 3)
        for agent, prob in agents:
            bits[:, col[agent]] |= who & (rng.random(k) < prob)
    treatment, treatment_texts = _join_bits(bits, vocab)

    band = np.where(endocrine, 2, np.where(grade >= 3, 1, 0))
    outcome_p = np.array([IRAE_OUTCOME_P["1-2"], IRAE_OUTCOME_P["3-4"], IRAE_OUTCOME_P["endocrine"]])
    outcome = _pick_rows(rng, outcome_p[band])          # index into contract.OUTCOMES (0..2)
    outcome = np.where(grade == 5, 3, outcome)
    return dict(patient=patient, offset=offset, category=category, grade=grade, treatment=treatment,
                outcome=outcome, discontinue=discontinued | (grade == 5)), treatment_texts


def _simulate_infusions(rng, n, site, first_day, regimen, interval, dose, planned, std_duration, routine,
                        cautious, site_rr, stop_day, reg_ind, reg_maint, reg_first, reg_ind_cycles,
                        reg_paclitaxel) -> dict[str, np.ndarray]:
    protocols = contract.PROTOCOLS
    p_std, p_ext, p_step, p_des = (protocols.index(x) for x in ("standard", "extended", "stepwise", "desensitization"))
    protocol_rr = np.array([PROTOCOL_RR[x] for x in protocols])
    protocol_min = np.array([PROTOCOL_DURATION[x] or 0 for x in protocols])
    day = first_day.copy()
    active = np.ones(n, dtype=bool)
    reacted = np.zeros(n, dtype=bool)      # has had a reaction
    pending = np.zeros(n, dtype=bool)      # the next infusion is the rechallenge
    post_protocol = np.full(n, p_std)
    post_premed = np.zeros(n, dtype=np.int64)
    out: dict[str, list[np.ndarray]] = {k: [] for k in (
        "patient", "cycle", "start", "dose", "duration", "protocol", "combo", "premed", "completed",
        "grade", "rechallenge", "rechallenge_outcome")}
    premed_sets = [np.array([s for s, _ in RECHALLENGE_PREMED[b]]) for b in ("1-2", "3+")]
    premed_p = [tuple(q for _, q in RECHALLENGE_PREMED[b]) for b in ("1-2", "3+")]
    prot_names = [np.array([protocols.index(x) for x, _ in RECHALLENGE_PROTOCOL[b]]) for b in ("1-2", "3+")]
    prot_p = [tuple(q for _, q in RECHALLENGE_PROTOCOL[b]) for b in ("1-2", "3+")]
    stop_p = np.array((0.0,) + STOP_AFTER_REACTION_P)
    for c in range(1, MAX_CYCLES + 1):
        sel = active & (planned >= c) & (day <= LAST_INFUSION_DAY) & (day < stop_day)
        active &= sel
        idx = np.flatnonzero(sel)
        m = len(idx)
        if m == 0:
            break
        reg = regimen[idx]
        start = day[idx] * DAY + 8 * 3600 + rng.integers(0, 96, m) * 300     # 08:00 to 15:55
        combo = np.where(c <= reg_ind_cycles[reg], reg_ind[reg], reg_maint[reg])
        if c == 1:
            combo = reg_first[reg]
        was_reacted = reacted[idx]
        premed = routine[idx]
        paclitaxel = np.flatnonzero((c <= reg_ind_cycles[reg]) & reg_paclitaxel[reg])
        premed[paclitaxel] = np.where(rng.random(len(paclitaxel)) < PREMED_PACLITAXEL_P, PREMED_PACLITAXEL,
                                      premed[paclitaxel])
        premed = np.where(was_reacted, post_premed[idx], premed)
        protocol = np.where((c == 1) & cautious[idx], p_ext, p_std)
        protocol = np.where(was_reacted, post_protocol[idx], protocol)
        duration = std_duration[idx]
        duration = np.where((duration == 30) & (c < 3), 60, duration)
        duration = np.where(protocol == p_std, duration, protocol_min[protocol])

        # spontaneous reaction (random draws only for the rows that need them)
        base = REACTION_RISK_BY_CYCLE[c - 1] if c <= len(REACTION_RISK_BY_CYCLE) else REACTION_RISK_LATER
        risk = (base * site_rr[site[idx]] * np.where(premed > 0, PREMEDICATION_RR, 1.0)
                * protocol_rr[protocol] * np.where(was_reacted, SENSITIZED_RR, 1.0))
        react = rng.random(m) < np.minimum(risk, 0.9)
        rech = pending[idx]
        grade = np.zeros(m, dtype=np.int64)
        spontaneous = np.flatnonzero(react & ~rech)
        grade[spontaneous] = _pick(rng, GRADE_P, len(spontaneous)) + 1
        # rechallenge: outcome drawn as in Table 4
        rech_rows = np.flatnonzero(rech)
        rech_outcome = np.full(m, -1, dtype=np.int64)    # 0 tolerated, 1 breakthrough, 2 failed
        rech_outcome[rech_rows] = _pick(rng, RECHALLENGE_OUTCOME_P, len(rech_rows))
        react[rech_rows] = rech_outcome[rech_rows] > 0
        breakthrough = np.flatnonzero(rech_outcome == 1)
        grade[breakthrough] = _pick(rng, BREAKTHROUGH_GRADE_P, len(breakthrough)) + 1
        failed_rows = np.flatnonzero(rech_outcome == 2)
        grade[failed_rows] = _pick(rng, FAILED_GRADE_P, len(failed_rows)) + 2   # 2 stopped, 3 or 4
        u = rng.random(m)
        completed = np.where(rech, True, u < COMPLETED_WITHOUT_REACTION_P)
        completed = np.where(grade == 1, True, completed)
        g2_done = np.where(rech, rech_outcome == 1, u < COMPLETED_AFTER_GRADE2_P)
        completed = np.where(grade == 2, g2_done, completed)
        completed = np.where(grade >= 3, False, completed)

        for k, v in (("patient", idx), ("cycle", np.full(m, c)), ("start", start), ("dose", dose[idx]),
                     ("duration", duration), ("protocol", protocol), ("combo", combo), ("premed", premed),
                     ("completed", completed), ("grade", grade), ("rechallenge", rech),
                     ("rechallenge_outcome", rech_outcome)):
            out[k].append(np.asarray(v))

        # what happens next
        reacting = np.flatnonzero(react)
        stop = np.zeros(m, dtype=bool)
        stop[reacting] = rng.random(len(reacting)) < stop_p[grade[reacting]]
        failed = rech_outcome == 2
        stop_failed = np.zeros(m, dtype=bool)
        stop_failed[failed_rows] = rng.random(len(failed_rows)) < STOP_AFTER_FAILED_RECHALLENGE_P
        index = react & ~was_reacted                                  # the patient's first reaction
        severe = grade >= 3
        first = np.flatnonzero(index)
        bands = [first[~severe[first]], first[severe[first]]]         # grade 1-2, grade 3+
        new_premed = np.zeros(m, dtype=np.int64)
        new_protocol = np.zeros(m, dtype=np.int64)
        for band, rows_ in enumerate(bands):
            new_premed[rows_] = premed_sets[band][_pick(rng, premed_p[band], len(rows_))]
            new_protocol[rows_] = prot_names[band][_pick(rng, prot_p[band], len(rows_))]
        later = react & was_reacted & ~rech                           # a reaction after the rechallenge
        pp, pr = post_premed[idx], post_protocol[idx]
        pp = np.where(index, new_premed, pp)
        pr = np.where(index, new_protocol, pr)
        pr = np.where((failed & ~stop_failed) | (later & severe), p_des, pr)
        post_premed[idx], post_protocol[idx] = pp, pr
        pending[idx] = index
        reacted[idx] |= react
        active[idx] = ~(stop | stop_failed)

        # the next cycle: delays none 65%, 1-3 days 20%, 4-7 days 10%, 8-14 days 5%; up to a week more after a reaction
        v = rng.random(m)
        delay = np.zeros(m, dtype=np.int64)
        delayed = np.flatnonzero(v >= 0.65)
        band = (v[delayed] >= 0.85).astype(np.int64) + (v[delayed] >= 0.95)
        delay[delayed] = rng.integers(np.array([1, 4, 8])[band], np.array([4, 8, 15])[band])
        delay[reacting] += rng.integers(0, 8, len(reacting))
        day[idx] = _busday(day[idx] + interval[idx] + delay)

    res = {k: (np.concatenate(v) if v else np.zeros(0, dtype=np.int64)) for k, v in out.items()}
    # recorded a little after the planned end of the infusion
    res["recorded"] = res["start"] + res["duration"] * 60 + rng.integers(15 * 60, DAY, len(res["start"]))
    return res


def _reaction_details(rng: np.random.Generator, i: dict[str, np.ndarray]):
    inf = np.flatnonzero(i["grade"] > 0)
    k = len(inf)
    grade = i["grade"][inf]
    completed = i["completed"][inf]
    terms = contract.REACTION_TERMS
    band = np.where(grade <= 2, 0, np.where(grade <= 4, 1, 2))
    term_p = np.array([[TERM_P[b].get(t, 0.0) for t in terms] for b in ("1-2", "3-4", "5")])
    term = _pick_rows(rng, term_p[band])

    # symptoms
    sym_band = np.where(grade == 1, 0, np.where(grade == 2, 1, 2))
    vocab = contract.SYMPTOMS
    bits = rng.random((k, len(vocab))) < _prob_matrix([SYMPTOM_P["1"], SYMPTOM_P["2"], SYMPTOM_P["3+"]],
                                                      sym_band, vocab)
    fallback = np.array([vocab.index(SYMPTOM_FALLBACK[b]) for b in ("1", "2", "3+")])[sym_band]
    empty = ~bits.any(axis=1)
    bits[np.flatnonzero(empty), fallback[empty]] = True
    symptoms, symptom_texts = _join_bits(bits, vocab)

    # treatment: stopped if not completed, slowed if completed after an interruption
    vocab = contract.REACTION_TREATMENT
    tr_band = np.where(grade == 1, 0, np.where(grade == 2, 1, np.where(grade == 3, 2, 3)))
    bits = rng.random((k, len(vocab))) < _prob_matrix(
        [TREATMENT_P["1"], TREATMENT_P["2"], TREATMENT_P["3"], TREATMENT_P["4+"]], tr_band, vocab)
    anaphylaxis = np.array(terms)[term] == "anaphylaxis"
    bits[:, vocab.index("epinephrine")] |= anaphylaxis
    bits[:, vocab.index("infusion_stopped")] = ~completed
    bits[:, vocab.index("infusion_slowed")] = completed & ((grade >= 2) | (rng.random(k) < 0.5))
    treatment, treatment_texts = _join_bits(bits, vocab)

    outcome_p = np.array([REACTION_OUTCOME_P[g] for g in (1, 2, 3, 4)])
    outcome = _pick_rows(rng, outcome_p[np.clip(grade, 1, 4) - 1])
    outcome = np.where(grade == 5, 3, outcome)

    # onset: mostly within 30 minutes; stepwise breakthroughs during the first fraction
    duration = i["duration"][inf]
    early = np.clip(np.rint(rng.gamma(2.0, 6.0, k)), 1, 29)
    late = rng.integers(30, np.maximum(duration + 60, 31) + 1)
    onset = np.where(rng.random(k) < ONSET_EARLY_P, early, late)
    stepwise = i["protocol"][inf] == contract.PROTOCOLS.index("stepwise")
    onset = np.where(stepwise & i["rechallenge"][inf], early, onset).astype(np.int64)
    onset = np.clip(onset, 0, 1440)

    recorded = i["recorded"][inf] + rng.integers(0, 3 * 3600, k)
    return (dict(infusion=inf, grade=grade, term=term, symptoms=symptoms, treatment=treatment,
                 outcome=outcome, onset=onset, recorded=recorded), symptom_texts, treatment_texts)


# --------------------------------------------------------------------------------------
# 2. Rows: one per record (first versions), kept as numbers; cells are formatted only when
#    written (a chunk of a file at a time) or when a data-quality feature needs their text
# --------------------------------------------------------------------------------------
@dataclass
class _Rows:
    table: str
    site: np.ndarray
    num: dict[str, np.ndarray]        # per record: the values its cells are formatted from
    columns: dict[str, Callable[[dict[str, np.ndarray]], pa.Array]]   # column -> cells from values
    parent: np.ndarray | None = None  # index into the parent table's records
    sub: np.ndarray | None = None     # submission index (0-based) of the first version
    kind: np.ndarray | None = None    # VALID or INVALID
    rule: np.ndarray | None = None    # index into INVALID_RULES[table], -1 if valid
    used: np.ndarray | None = None    # already given a data-quality feature
    over: dict[str, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    # column -> (records, texts): the cells an invalid row was sent with instead

    @property
    def n(self) -> int:
        return len(self.site)

    @property
    def recorded(self) -> np.ndarray:
        """recorded_at, seconds (local); late parents change it in place."""
        return self.num["recorded"]

    def values(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v[idx] for k, v in self.num.items()}

    def cells(self, column: str, idx: np.ndarray) -> pa.Array:
        return self.columns[column](self.values(idx))

    def text(self, column: str, idx: np.ndarray) -> np.ndarray:
        """The cells of `column` for records `idx`, as text (an object array)."""
        return _text(self.cells(column, idx))


def _rows(t: _Truth, site_numbers: np.ndarray) -> dict[str, _Rows]:
    p, i, r, e, texts = t.p, t.i, t.r, t.e, t.texts
    n = len(p["site"])
    # MRN-<site number, 3 digits>-<number>: every patient's once, taken by the rows that refer to it
    site_text = [str(v).zfill(3) for v in site_numbers.tolist()]
    mrn = p["mrn"]
    if n and len(set(map(len, site_text))) == 1 and len(str(mrn.min())) == len(str(mrn.max())):
        ws, wm = len(site_text[0]), len(str(mrn.max()))
        cells = np.empty((n, 5 + ws + wm), dtype=np.uint8)
        cells[:, :4] = np.frombuffer(b"MRN-", dtype=np.uint8)
        cells[:, 4:4 + ws] = np.frombuffer("".join(site_text).encode(), dtype=np.uint8).reshape(-1, ws)[p["site"]]
        cells[:, 4 + ws] = ord("-")
        cells[:, 5 + ws:] = _digit_cells(mrn, wm)
        patient_ref = fixed_width_texts(cells)
    else:
        patient_ref = string_array([f"MRN-{site_text[s]}-{m}" for s, m in zip(p["site"].tolist(), mrn.tolist())])

    def ref_of_patient(v):
        return patient_ref.take(_int_array(v["patient"]))

    rows: dict[str, _Rows] = {}
    rows["patients"] = _Rows("patients", p["site"], dict(
        patient=np.arange(n, dtype=np.int64), sex=p["sex"], age=p["age"], tumor=p["tumor"], weight=p["weight"],
        first_day=p["first_day"], recorded=p["recorded"]), {
        "patient_ref": ref_of_patient,
        "sex": lambda v: _enum_array(v["sex"], contract.SEX),
        "age_at_first_dose": lambda v: _int_array(v["age"]),
        "tumor_type": lambda v: _enum_array(v["tumor"], tuple(TUMOR_MIX)),
        "weight_kg": lambda v: _weight_array(v["weight"]),
        "first_dose_date": lambda v: _date_array(v["first_day"]),
        "recorded_at": lambda v: _ts_array(v["recorded"]),
    })

    inf_site = p["site"][i["patient"]]
    inf_number = _rank_within(inf_site, i["start"], i["patient"])
    rows["infusions"] = _Rows("infusions", inf_site, dict(
        number=inf_number, patient=i["patient"], cycle=i["cycle"], start=i["start"], dose=i["dose"],
        duration=i["duration"], protocol=i["protocol"], combo=i["combo"], premed=i["premed"],
        completed=i["completed"], recorded=i["recorded"]), {
        "infusion_ref": lambda v: _ref_array("INF-", v["number"], 7),
        "patient_ref": ref_of_patient,
        "cycle": lambda v: _int_array(v["cycle"]),
        "started_at": lambda v: _ts_array(v["start"]),
        "dose_mg": lambda v: _dose_array(v["dose"]),
        "planned_duration_min": lambda v: _int_array(v["duration"]),
        "protocol": lambda v: _enum_array(v["protocol"], contract.PROTOCOLS),
        "combination": lambda v: _enum_array(v["combo"], texts["combination"]),
        "premedication": lambda v: _enum_array(v["premed"], texts["premedication"]),
        "completed": lambda v: _numeric(pa.int8(), np.asarray(v["completed"], dtype=np.int8)).cast(pa.bool_()),
        "recorded_at": lambda v: _ts_array(v["recorded"]),
    }, parent=i["patient"])

    rx_site = inf_site[r["infusion"]]
    rows["reactions"] = _Rows("reactions", rx_site, dict(
        number=_rank_within(rx_site, r["infusion"]), infusion_number=inf_number[r["infusion"]], onset=r["onset"],
        term=r["term"], grade=r["grade"], symptoms=r["symptoms"], treatment=r["treatment"], outcome=r["outcome"],
        recorded=r["recorded"]), {
        "reaction_ref": lambda v: _ref_array("RXN-", v["number"], 6),
        "infusion_ref": lambda v: _ref_array("INF-", v["infusion_number"], 7),
        "onset_min": lambda v: _int_array(v["onset"]),
        "term": lambda v: _enum_array(v["term"], contract.REACTION_TERMS),
        "grade": lambda v: _int_array(v["grade"]),
        "symptoms": lambda v: _enum_array(v["symptoms"], texts["symptoms"]),
        "treatment": lambda v: _enum_array(v["treatment"], texts["reaction_treatment"]),
        "outcome": lambda v: _enum_array(v["outcome"], contract.OUTCOMES),
        "recorded_at": lambda v: _ts_array(v["recorded"]),
    }, parent=r["infusion"])

    ir_site = p["site"][e["patient"]]
    rows["iraes"] = _Rows("iraes", ir_site, dict(
        number=_rank_within(ir_site, e["onset_day"], e["patient"]), patient=e["patient"],
        onset_day=e["onset_day"], category=e["category"], grade=e["grade"], treatment=e["treatment"],
        outcome=e["outcome"], recorded=e["recorded"]), {
        "irae_ref": lambda v: _ref_array("IRAE-", v["number"], 6),
        "patient_ref": ref_of_patient,
        "onset_date": lambda v: _date_array(v["onset_day"]),
        "category": lambda v: _enum_array(v["category"], contract.IRAE_CATEGORIES),
        "grade": lambda v: _int_array(v["grade"]),
        "treatment": lambda v: _enum_array(v["treatment"], texts["irae_treatment"]),
        "outcome": lambda v: _enum_array(v["outcome"], contract.OUTCOMES),
        "recorded_at": lambda v: _ts_array(v["recorded"]),
    }, parent=e["patient"])
    for t_name, rt in rows.items():
        assert tuple(rt.columns) == contract.FILES[FILE[t_name]].column_names
    return rows


# --------------------------------------------------------------------------------------
# 3. Data-quality features
# --------------------------------------------------------------------------------------
def _strip_offset(text: np.ndarray) -> np.ndarray:
    return np.array([t[: -len(UTC_OFFSET)] for t in text], dtype=object)


def _append_token(text: np.ndarray, token: str) -> np.ndarray:
    return np.array([f"{t};{token}" if t else token for t in text], dtype=object)


def _swap(text: np.ndarray, mapping: dict[str, str]) -> np.ndarray:
    return np.array([mapping[t] for t in text], dtype=object)


def _nonfatal(rows: _Rows, idx: np.ndarray) -> np.ndarray:
    return rows.num["outcome"][idx] != contract.OUTCOMES.index("fatal")


# Each rule: (applies to the row?, new cells for the rows it breaks). The rule names are
# those ingestion reports: <file stem>.<column>.<check>, see safety_ledger/suites.py.
# Every mutation breaks exactly that rule and no other.
def _rules() -> dict[str, dict[str, tuple[Callable, Callable]]]:
    always = lambda rows, idx: np.ones(len(idx), dtype=bool)  # noqa: E731
    sex_code = {"female": "F", "male": "M", "unknown": "U"}
    tumor_text = {"cervical": "cervix", "gastric_gej": "gastric", "hcc": "liver", "nsclc": "lung",
                  "sclc": "small_cell_lung", "lcnec": "neuroendocrine", "npc": "nasopharynx",
                  "escc": "esophagus", "endometrial": "uterus", "rectal": "colorectal",
                  "biliary": "cholangiocarcinoma", "other": "unknown_primary"}
    category_text = {"hepatitis": "hepatotoxicity", "pneumonitis": "pneumonia", "colitis": "diarrhea",
                     "dermatitis": "rash", "ten_sjs": "sjs", "thyroiditis": "hypothyroidism",
                     "hypophysitis": "pituitary", "adrenal_insufficiency": "adrenal",
                     "type1_diabetes": "diabetes", "myocarditis": "cardiac", "nephritis": "kidney",
                     "myositis": "muscle", "arthritis": "arthralgia", "pancreatitis": "amylase_high",
                     "other": "unspecified"}

    def ts_type(rows, idx, rng):
        return {"recorded_at": _strip_offset(rows.text("recorded_at", idx))}

    return {
        "patients": {
            "patients.sex.required": (always, lambda rows, idx, rng: {"sex": np.full(len(idx), "", dtype=object)}),
            "patients.sex.vocabulary": (always, lambda rows, idx, rng: {"sex": _swap(rows.text("sex", idx), sex_code)}),
            "patients.age_at_first_dose.range": (always, lambda rows, idx, rng: {
                # an extra digit, or a dropped one
                "age_at_first_dose": _ints(np.where(rng.random(len(idx)) < 0.5, rows.num["age"][idx] * 10,
                                                    rows.num["age"][idx] // 10))}),
            "patients.age_at_first_dose.type": (always, lambda rows, idx, rng: {
                "age_at_first_dose": np.char.add(rows.num["age"][idx].astype(str), "y").astype(object)}),
            "patients.tumor_type.vocabulary": (always, lambda rows, idx, rng: {
                "tumor_type": _swap(rows.text("tumor_type", idx), tumor_text)}),
            "patients.weight_kg.range": (always, lambda rows, idx, rng: {  # grams instead of kilograms
                "weight_kg": np.char.mod("%.0f", np.nan_to_num(rows.num["weight"][idx], nan=0.0) * 1000).astype(object)}),
            "patients.first_dose_date.not_after_recorded_at": (always, lambda rows, idx, rng: {
                "first_dose_date": _date(rows.recorded[idx] // DAY + rng.integers(1, 366, len(idx)))}),
            "patients.first_dose_date.type": (always, lambda rows, idx, rng: {
                "first_dose_date": np.array([t.replace("-", "/") for t in rows.text("first_dose_date", idx)], dtype=object)}),
            "patients.recorded_at.type": (always, ts_type),
        },
        "infusions": {
            "infusions.cycle.range": (always, lambda rows, idx, rng: {"cycle": np.full(len(idx), "0", dtype=object)}),
            "infusions.dose_mg.range": (always, lambda rows, idx, rng: {"dose_mg": np.full(len(idx), "0", dtype=object)}),
            "infusions.dose_mg.type": (always, lambda rows, idx, rng: {
                "dose_mg": np.char.add(rows.text("dose_mg", idx).astype(str), " mg").astype(object)}),
            "infusions.dose_mg.required": (always, lambda rows, idx, rng: {"dose_mg": np.full(len(idx), "", dtype=object)}),
            "infusions.planned_duration_min.range": (always, lambda rows, idx, rng: {  # hours, not minutes
                "planned_duration_min": _ints(np.maximum(rows.num["duration"][idx] // 60, 1))}),
            "infusions.protocol.vocabulary": (always, lambda rows, idx, rng: {
                "protocol": np.array(["Standard", "slow", "rapid"], dtype=object)[rng.integers(0, 3, len(idx))]}),
            "infusions.combination.vocabulary": (always, lambda rows, idx, rng: {
                "combination": np.where(rows.text("combination", idx) == "", "none", "chemotherapy").astype(object)}),
            "infusions.premedication.vocabulary": (always, lambda rows, idx, rng: {
                "premedication": _append_token(rows.text("premedication", idx), "loratadine")}),
            "infusions.completed.vocabulary": (always, lambda rows, idx, rng: {
                "completed": np.where(rows.text("completed", idx) == "true", "yes", "no").astype(object)}),
            "infusions.started_at.type": (always, lambda rows, idx, rng: {
                "started_at": _strip_offset(rows.text("started_at", idx))}),
            "infusions.started_at.not_after_recorded_at": (always, lambda rows, idx, rng: {
                "started_at": _ts(rows.recorded[idx] + rng.integers(DAY, 30 * DAY, len(idx)))}),
            "infusions.recorded_at.type": (always, ts_type),
        },
        "reactions": {
            "reactions.onset_min.range": (always, lambda rows, idx, rng: {
                "onset_min": _ints(-np.maximum(rows.num["onset"][idx], 1))}),
            "reactions.grade.range": (_nonfatal, lambda rows, idx, rng: {
                "grade": np.where(rng.random(len(idx)) < 0.5, "0", "6").astype(object)}),
            "reactions.term.vocabulary": (always, lambda rows, idx, rng: {
                "term": np.full(len(idx), "hypersensitivity", dtype=object)}),
            "reactions.symptoms.vocabulary": (always, lambda rows, idx, rng: {
                "symptoms": _append_token(rows.text("symptoms", idx), "itching")}),
            "reactions.symptoms.min_items": (always, lambda rows, idx, rng: {
                "symptoms": np.full(len(idx), "", dtype=object)}),
            "reactions.treatment.vocabulary": (always, lambda rows, idx, rng: {
                "treatment": _append_token(rows.text("treatment", idx), "antihistamine")}),
            "reactions.outcome.vocabulary": (always, lambda rows, idx, rng: {
                "outcome": np.full(len(idx), "resolved", dtype=object)}),
            "reactions.outcome.fatal_iff_grade5": (always, lambda rows, idx, rng: {  # fatal with grade 1-4
                "outcome": np.where(rows.text("outcome", idx) == "fatal", "recovered", "fatal").astype(object)}),
            "reactions.recorded_at.type": (always, ts_type),
        },
        "iraes": {
            "iraes.onset_date.type": (always, lambda rows, idx, rng: {  # dd/mm/yyyy
                "onset_date": np.array(["/".join(reversed(t.split("-"))) for t in rows.text("onset_date", idx)],
                                       dtype=object)}),
            "iraes.category.vocabulary": (always, lambda rows, idx, rng: {
                "category": _swap(rows.text("category", idx), category_text)}),
            "iraes.grade.range": (_nonfatal, lambda rows, idx, rng: {
                "grade": np.where(rng.random(len(idx)) < 0.5, "0", "6").astype(object)}),
            "iraes.treatment.vocabulary": (always, lambda rows, idx, rng: {
                "treatment": _append_token(rows.text("treatment", idx), "steroids")}),
            "iraes.outcome.fatal_iff_grade5": (always, lambda rows, idx, rng: {
                "outcome": np.where(rows.text("outcome", idx) == "fatal", "recovered", "fatal").astype(object)}),
            "iraes.recorded_at.type": (always, ts_type),
        },
    }


INVALID_RULES: dict[str, tuple[str, ...]] = {t: tuple(r) for t, r in _rules().items()}
"""The one-row rules the generator breaks, per table (names as ingestion reports them)."""


def _corrections(rows: _Rows, idx: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """New values (keys of rows.num) for a correction of each record in `idx`: one field
    changed, still valid."""
    m = len(idx)
    u = rng.random(m)
    if rows.table == "patients":
        weight = rows.num["weight"][idx]
        delta = rng.integers(5, 41, m) / 10.0 * np.where(rng.random(m) < 0.5, -1, 1)
        new_weight = np.where(np.isnan(weight), np.round(rng.normal(60.0, 10.0, m).clip(35, 130), 1),
                              np.clip(weight + delta, 30.0, 200.0))
        age = rows.num["age"][idx]
        new_age = np.where(age >= 110, age - 1, age + np.where(rng.random(m) < 0.5, -1, 1))
        new_age = np.where(new_age < 18, 19, new_age)
        by_weight = u < 0.7
        return {"weight": np.where(by_weight, new_weight, weight), "age": np.where(by_weight, age, new_age)}
    if rows.table == "infusions":
        dose = rows.num["dose"][idx]
        step = rng.integers(1, 11, m) * 5.0 * np.where(rng.random(m) < 0.5, -1, 1)
        new_dose = np.where(dose + step < 5, dose + np.abs(step), dose + step)
        new_dose = np.where(new_dose > 3000, dose - np.abs(step), new_dose)
        duration = rows.num["duration"][idx]
        new_duration = np.where(duration + 30 > 1440, duration - 30, duration + 30)
        by_dose = u < 0.6
        return {"dose": np.where(by_dose, new_dose, dose), "duration": np.where(by_dose, duration, new_duration)}
    grade, outcome = rows.num["grade"][idx], rows.num["outcome"][idx]
    new_grade = np.where(grade == 1, 2, grade - 1)
    if rows.table == "reactions":   # anaphylaxis stays within grades 3-4
        anaphylaxis = rows.num["term"][idx] == contract.REACTION_TERMS.index("anaphylaxis")
        new_grade = np.where(anaphylaxis, np.where(grade == 3, 4, 3), new_grade)
    recovering = contract.OUTCOMES.index("recovering")
    by_outcome = (outcome == recovering) & (u < 0.5)
    by_grade = ~by_outcome & (grade <= 4) & (u < 0.8)
    out = {"grade": np.where(by_grade, new_grade, grade),
           "outcome": np.where(by_outcome, contract.OUTCOMES.index("recovered"), outcome)}
    rest = ~by_outcome & ~by_grade
    if rows.table == "reactions":
        onset = rows.num["onset"][idx]
        new_onset = np.where(onset >= 10, onset - rng.integers(1, 10, m), onset + rng.integers(1, 10, m))
        out["onset"] = np.where(rest, new_onset, onset)
    else:   # onset a few days earlier (never before the first dose: irAEs start >= 7 days after it)
        onset_day = rows.num["onset_day"][idx]
        out["onset_day"] = np.where(rest, onset_day - rng.integers(1, 4, m), onset_day)
    return out


@dataclass
class _Extra:
    """Rows added on top of the first versions: corrections and duplicates. A row is its
    record's first version with the values in `vals` (keys of _Rows.num) changed."""
    rec: list[np.ndarray] = field(default_factory=list)
    sub: list[np.ndarray] = field(default_factory=list)
    kind: list[np.ndarray] = field(default_factory=list)
    vals: list[dict[str, np.ndarray]] = field(default_factory=list)
    recorded: list[np.ndarray] = field(default_factory=list)

    def add(self, rec, sub, kind, vals, recorded) -> None:
        self.rec.append(rec)
        self.sub.append(np.asarray(sub))
        self.kind.append(np.full(len(rec), kind, dtype=np.int8))
        self.vals.append(vals)
        self.recorded.append(np.asarray(recorded))


def _exports(rng: np.random.Generator, n_sites: int, n_subs: int) -> np.ndarray:
    """Export time (local seconds) of every site's submissions, increasing; the last one is
    the data cut-off."""
    span = CUTOFF_DAY - START_DAY
    base = START_DAY + np.rint(np.arange(1, n_subs + 1) * span / n_subs).astype(np.int64)
    jitter = rng.integers(0, min(3, span // n_subs // 3) + 1, (n_sites, n_subs))
    jitter[:, -1] = 0
    minute = rng.integers(0, 60, (n_sites, n_subs))
    return (base[None, :] - jitter) * DAY + EXPORT_SECOND + minute * 60


def _assign(site: np.ndarray, recorded: np.ndarray, exports: np.ndarray) -> np.ndarray:
    """The first submission of the row's site exported at or after its recorded_at."""
    n_sites, n_subs = exports.shape
    big = np.int64(4_000_000_000)
    flat = (np.arange(n_sites, dtype=np.int64)[:, None] * big + exports).ravel()
    sub = np.searchsorted(flat, site.astype(np.int64) * big + recorded, side="left") - site * n_subs
    if len(sub) and (sub.max() >= n_subs or sub.min() < 0):
        raise AssertionError("a record was recorded after its site's last export")
    return sub


def _quality(rng: np.random.Generator, rows: dict[str, _Rows], exports: np.ndarray, rates: dict[str, float]):
    n_subs = exports.shape[1]
    last = n_subs - 1
    for t in TABLES:
        rt = rows[t]
        rt.sub = _assign(rt.site, rt.recorded, exports)
        rt.kind = np.full(rt.n, VALID, dtype=np.int8)
        rt.rule = np.full(rt.n, -1, dtype=np.int16)
        rt.used = np.zeros(rt.n, dtype=bool)

    def later(rt: _Rows, idx: np.ndarray, first_sub: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A later submission for each row and a recorded_at inside that submission's window."""
        k = rng.integers(first_sub, n_subs)
        sites = rt.site[idx]
        return k, _in_window(rng, exports[sites, k - 1], exports[sites, k])

    # late parents: the reaction's infusion is recorded, and sent, in a later submission
    rx, inf = rows["reactions"], rows["infusions"]
    chosen = _choose(rng, np.flatnonzero(~rx.used & (rx.sub < last)), round(rates["late_parent_rate"] * rx.n))
    parents = rx.parent[chosen]
    k = rx.sub[chosen] + 1      # the next submission after the reaction's
    when = _in_window(rng, exports[inf.site[parents], k - 1], exports[inf.site[parents], k])
    inf.sub[parents], inf.recorded[parents] = k, when
    rx.used[chosen] = inf.used[parents] = True
    late_parents = len(chosen)

    # invalid rows: exactly one one-row rule broken
    rules = _rules()
    for t in TABLES:
        rt = rows[t]
        chosen = _choose(rng, np.flatnonzero(~rt.used), round(rates["invalid_rate"] * rt.n))
        names = tuple(rules[t])
        # each rule as often as the others (one more for some, from a random offset), in random rows
        which = rng.permutation((rng.integers(0, len(names)) + np.arange(len(chosen))) % len(names))
        fallback = names.index(f"{t}.recorded_at.type")
        for j, name in enumerate(names):
            idx = chosen[which == j]
            applies, mutate = rules[t][name]
            ok = applies(rt, idx)
            which[np.isin(chosen, idx[~ok])] = fallback
        for j, name in enumerate(names):   # apply in rule order, so the draws are deterministic
            idx = chosen[which == j]
            if len(idx) == 0:
                continue
            for column, cells in rules[t][name][1](rt, idx, rng).items():
                rt.over.setdefault(column, []).append((idx, np.asarray(cells, dtype=object)))
            rt.rule[idx] = j
        rt.kind[chosen] = INVALID
        rt.used[chosen] = True

    # corrections and duplicates, in a later submission than the record
    extra = {t: _Extra() for t in TABLES}
    for t in TABLES:
        rt = rows[t]
        chosen = _choose(rng, np.flatnonzero(~rt.used & (rt.sub < last)), round(rates["correction_rate"] * rt.n))
        k, when = later(rt, chosen, rt.sub[chosen] + 1)
        vals = _corrections(rt, chosen, rng)
        vals["recorded"] = when
        extra[t].add(chosen, k, CORRECTION, vals, when)
        rt.used[chosen] = True

        # an overlapping export window re-sends the row unchanged in the next submission
        chosen = _choose(rng, np.flatnonzero(~rt.used & (rt.sub < last)), round(rates["duplicate_rate"] * rt.n))
        extra[t].add(chosen, rt.sub[chosen] + 1, DUPLICATE, {}, rt.recorded[chosen])
        rt.used[chosen] = True

    # retractions: after the record and after every version of what hangs off it
    # (a site does not go on sending infusions of a patient it has retracted)
    last_sub, last_rec = {}, {}
    for t in TABLES:
        rt, ex = rows[t], extra[t]
        last_sub[t], last_rec[t] = rt.sub.copy(), rt.recorded.copy()
        for rec, sub, when in zip(ex.rec, ex.sub, ex.recorded):
            np.maximum.at(last_sub[t], rec, sub)
            np.maximum.at(last_rec[t], rec, when)
    for child, parent in (("reactions", "infusions"), ("infusions", "patients"), ("iraes", "patients")):
        np.maximum.at(last_sub[parent], rows[child].parent, last_sub[child])
        np.maximum.at(last_rec[parent], rows[child].parent, last_rec[child])
    retractions: dict[str, list[np.ndarray]] = {c: [] for c in ("site", "sub", "record_type", "ref", "reason", "recorded")}
    for t in TABLES:
        rt = rows[t]
        chosen = _choose(rng, np.flatnonzero(~rt.used & (rt.sub < last)), round(rates["retraction_rate"] * rt.n))
        k = rng.integers(np.maximum(rt.sub[chosen] + 1, last_sub[t][chosen]), n_subs)
        sites = rt.site[chosen]
        when = _in_window(rng, np.maximum(exports[sites, k - 1], last_rec[t][chosen]), exports[sites, k])
        retractions["site"].append(sites)
        retractions["sub"].append(k)
        retractions["record_type"].append(np.full(len(chosen), RECORD_TYPE[t], dtype=object))
        retractions["ref"].append(rt.text(KEY[t], chosen))
        reasons = RETRACTION_REASONS[RECORD_TYPE[t]]
        retractions["reason"].append(np.array(reasons, dtype=object)[rng.integers(0, len(reasons), len(chosen))])
        retractions["recorded"].append(when)
        rt.used[chosen] = True
    retraction_cols = {c: np.concatenate(v) for c, v in retractions.items()}
    return extra, retraction_cols, late_parents


def _orphans(rows: dict[str, _Rows]) -> dict[str, int]:
    """Valid records that hang off a record sent only as an invalid row (never resolvable)."""
    bad_patient = rows["patients"].kind == INVALID
    inf = rows["infusions"]
    bad_infusion = (inf.kind == INVALID) | bad_patient[inf.parent]
    out = {
        "infusions.csv": int(((inf.kind != INVALID) & bad_patient[inf.parent]).sum()),
        "reactions.csv": int(((rows["reactions"].kind != INVALID) & bad_infusion[rows["reactions"].parent]).sum()),
        "iraes.csv": int(((rows["iraes"].kind != INVALID) & bad_patient[rows["iraes"].parent]).sum()),
    }
    return out


# --------------------------------------------------------------------------------------
# 4. Writing
# --------------------------------------------------------------------------------------
WRITE_CHUNK_ROWS = 65_536   # rows formatted at a time


@dataclass
class _Ordered:
    """Every row of a table (first versions and extra rows) in file order: by site,
    submission, record and version."""
    rec: np.ndarray          # the row's record
    extra: np.ndarray        # index into the extra rows (ex_num), -1 for a first version
    kind: np.ndarray         # VALID, INVALID, CORRECTION or DUPLICATE
    bounds: np.ndarray       # the rows of (site s, submission k) are bounds[g]:bounds[g + 1], g = s * n_subs + k
    ex_num: dict[str, np.ndarray]                     # values of the extra rows (keys of _Rows.num)
    over: dict[str, tuple[np.ndarray, np.ndarray]]    # column -> (records, texts) sorted by record


def _ordered(rt: _Rows, ex: _Extra, n_sites: int, n_subs: int) -> _Ordered:
    ex_rec = np.concatenate([np.zeros(0, dtype=np.int64)] + ex.rec).astype(np.int64)
    n_ex = len(ex_rec)
    rec = np.concatenate([np.arange(rt.n, dtype=np.int64), ex_rec])
    sub = np.concatenate([rt.sub] + ex.sub).astype(np.int64)
    kind = np.concatenate([rt.kind] + ex.kind).astype(np.int8)
    extra = np.concatenate([np.full(rt.n, -1, dtype=np.int64), np.arange(n_ex, dtype=np.int64)])
    group = rt.site[rec].astype(np.int64) * n_subs + sub
    # one int64 key (group, record, version) when it fits, else a lexsort; keys are unique
    span = 2 * max(rt.n, 1)
    if n_sites * n_subs * span < 2 ** 62:
        order = np.argsort(group * span + rec * 2 + (extra >= 0))
    else:
        order = np.lexsort(((extra >= 0), rec, group))
    group = group[order]
    bounds = np.searchsorted(group, np.arange(n_sites * n_subs + 1), side="left")
    keys = sorted({k for v in ex.vals for k in v} | ({"recorded"} if n_ex else set()))
    ex_num = {k: rt.num[k][ex_rec] for k in keys}
    at = 0
    for batch, recorded in zip(ex.vals, ex.recorded):
        m = len(recorded)
        ex_num["recorded"][at:at + m] = recorded
        for k, v in batch.items():
            ex_num[k][at:at + m] = v
        at += m
    over = {}
    for column, parts in rt.over.items():
        recs = np.concatenate([r for r, _ in parts])
        texts = np.concatenate([x for _, x in parts])
        o = np.argsort(recs, kind="stable")
        over[column] = (recs[o], texts[o])
    return _Ordered(rec[order], extra[order], kind[order], bounds, ex_num, over)


def _row_chunks(rt: _Rows, o: _Ordered, lo: int, hi: int):
    """(a, b, columns of rows a:b) for rows lo:hi of a table, WRITE_CHUNK_ROWS at a time."""
    for a in range(lo, hi, WRITE_CHUNK_ROWS):
        b = min(hi, a + WRITE_CHUNK_ROWS)
        rec = o.rec[a:b]
        vals = rt.values(rec)
        at = np.flatnonzero(o.extra[a:b] >= 0)
        if len(at):
            e = o.extra[a:b][at]
            for k, v in o.ex_num.items():
                vals[k][at] = v[e]
        cols: dict = {c: f(vals) for c, f in rt.columns.items()}
        bad = np.flatnonzero(o.kind[a:b] == INVALID)
        if len(bad):
            r = rec[bad]
            for c, (orec, texts) in o.over.items():
                j = np.minimum(np.searchsorted(orec, r), len(orec) - 1)
                hit = orec[j] == r
                if hit.any():
                    cols[c] = Patched(cols[c], bad[hit], string_array(texts[j[hit]]))
        yield a, b, cols


def _write_table(rt: _Rows, o: _Ordered, header: tuple[str, ...], targets: list[Path]) -> list[tuple[str, int]]:
    """Write a site's table as one file per submission (rows bounds[k]:bounds[k + 1] to
    targets[k]); each chunk of rows is formatted once, and cut where a submission ends.
    Returns (sha256, rows) per file."""
    done: list[tuple[str, int]] = []
    writer = CsvWriter(targets[0], header, fsync=False)
    try:
        for a, b, cols in _row_chunks(rt, o, 0, int(o.bounds[-1])):
            cuts = [int(x) - a for x in o.bounds if a < x < b]
            start = a
            for piece in encode_rows(header, cols, cuts):
                k = int(np.searchsorted(o.bounds, start, side="right")) - 1   # the submission of these rows
                while len(done) < k:
                    done.append(writer.close())
                    writer = CsvWriter(targets[len(done)], header, fsync=False)
                writer.write(piece)
                start += piece.rows
        while True:
            done.append(writer.close())
            if len(done) == len(targets):
                return done
            writer = CsvWriter(targets[len(done)], header, fsync=False)
    except BaseException:
        writer.abort()
        raise


@dataclass(frozen=True)
class _SiteJob:
    out: Path
    site_id: str
    number: int                      # the site's number (SITE-001 -> 1), in its medical record numbers
    patients: int
    seed: np.random.SeedSequence     # the site's own random stream
    exports: np.ndarray              # (1 x submissions) export times, seconds (local)
    submission_ids: tuple[str, ...]
    exported_at: tuple[str, ...]
    rates: dict[str, float]


@dataclass
class _SiteResult:
    submissions: list[SubmissionSummary]
    invalid_at: np.ndarray           # (k x 4): submission index, file index, 1-based row, rule index
    rows: dict[str, int]
    valid: dict[str, int]
    corrections: dict[str, int]
    duplicates: dict[str, int]
    invalid: dict[str, int]
    retractions: dict[str, int]
    late_parents: int
    orphans: dict[str, int]
    clinical: dict[str, int]


def _generate_site(job: _SiteJob) -> _SiteResult:
    """Simulate one site, add its data-quality features and write its submissions."""
    rng = np.random.default_rng(job.seed)
    truth = _simulate(rng, 1, job.patients)
    rows = _rows(truth, np.array([job.number]))
    extra, retractions, late_parents = _quality(rng, rows, job.exports, job.rates)
    n_subs = job.exports.shape[1]
    ordered = {t: _ordered(rows[t], extra[t], 1, n_subs) for t in TABLES}
    rorder = np.lexsort((retractions["recorded"], retractions["sub"]))
    rbounds = np.searchsorted(retractions["sub"][rorder], np.arange(n_subs + 1), side="left")
    rcols = {c: retractions[c][rorder] for c in ("record_type", "ref", "reason", "recorded")}

    # the files: each table in one pass over its rows, cut into the submissions' files;
    # then each submission's retractions and, last, its manifest
    folders = [job.out / job.site_id / sub_id for sub_id in job.submission_ids]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    listed: list[dict[str, dict]] = [{} for _ in range(n_subs)]
    for t in TABLES:
        written = _write_table(rows[t], ordered[t], contract.FILES[FILE[t]].column_names,
                               [folder / FILE[t] for folder in folders])
        for k, (digest, n) in enumerate(written):
            listed[k][FILE[t]] = {"sha256": digest, "rows": n}
    submissions: list[SubmissionSummary] = []
    for k in range(n_subs):
        kinds = np.zeros(4, dtype=np.int64)
        for t in TABLES:
            o = ordered[t]
            kinds += np.bincount(o.kind[o.bounds[k]:o.bounds[k + 1]], minlength=4)
        lo, hi = int(rbounds[k]), int(rbounds[k + 1])
        if hi > lo:
            digest, n = write_csv(folders[k] / "retractions.csv", contract.RETRACTIONS.column_names, Chunks([{
                "record_type": string_array(rcols["record_type"][lo:hi]),
                "ref": string_array(rcols["ref"][lo:hi]),
                "reason": string_array(rcols["reason"][lo:hi]),
                "recorded_at": _ts_array(rcols["recorded"][lo:hi])}]), fsync=False)
            listed[k]["retractions.csv"] = {"sha256": digest, "rows": n}
        write_manifest(folders[k], job.site_id, job.submission_ids[k], job.exported_at[k], listed[k], fsync=False)
        submissions.append(SubmissionSummary(
            job.site_id, job.submission_ids[k], job.exported_at[k], {f: v["rows"] for f, v in listed[k].items()},
            valid=int(kinds[VALID]), corrections=int(kinds[CORRECTION]), duplicates=int(kinds[DUPLICATE]),
            invalid=int(kinds[INVALID]), retractions=hi - lo))

    # every invalid row, in file order: submission, file, row
    found = []
    for ti, t in enumerate(TABLES):
        o = ordered[t]
        pos = np.flatnonzero(o.kind == INVALID)
        k = np.searchsorted(o.bounds, pos, side="right") - 1
        found.append(np.stack([k, np.full(len(pos), ti), pos - o.bounds[k] + 1, rows[t].rule[o.rec[pos]]], axis=1))
    invalid_at = np.concatenate(found).astype(np.int64)
    invalid_at = invalid_at[np.lexsort((invalid_at[:, 2], invalid_at[:, 1], invalid_at[:, 0]))]

    def by_file(code: int) -> dict[str, int]:
        return {FILE[t]: int((ordered[t].kind == code).sum()) for t in TABLES}

    i, r = truth.i, truth.r
    clinical = {
        "patients": len(truth.p["site"]), "infusions": len(i["patient"]), "reactions": len(r["grade"]),
        **{f"reactions_grade{g}": int((r["grade"] == g).sum()) for g in range(1, 6)},
        "patients_with_reaction": int(len(np.unique(i["patient"][i["grade"] > 0]))),
        "rechallenges": int(i["rechallenge"].sum()),
        "rechallenge_tolerated": int((i["rechallenge_outcome"] == 0).sum()),
        "rechallenge_breakthrough": int((i["rechallenge_outcome"] == 1).sum()),
        "rechallenge_failed": int((i["rechallenge_outcome"] == 2).sum()),
        "iraes": len(truth.e["grade"]),
    }
    return _SiteResult(
        submissions=submissions, invalid_at=invalid_at,
        rows={**{FILE[t]: len(ordered[t].kind) for t in TABLES}, "retractions.csv": len(rcols["ref"])},
        valid=by_file(VALID), corrections=by_file(CORRECTION), duplicates=by_file(DUPLICATE),
        invalid={name: int((rows[t].rule == j).sum()) for t in TABLES for j, name in enumerate(INVALID_RULES[t])},
        retractions={RECORD_TYPE[t]: int((retractions["record_type"] == RECORD_TYPE[t]).sum()) for t in TABLES},
        late_parents=late_parents, orphans=_orphans(rows), clinical=clinical)


def _worker_init() -> None:
    """In a worker process: keep freed memory for the next site rather than handing it back
    to the system and faulting it in again (slow on some virtual machines). glibc only."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-4, 0)          # M_MMAP_MAX: large blocks from the heap too, so they are reused
        libc.mallopt(-1, 1 << 30)    # M_TRIM_THRESHOLD: keep up to 1 GiB of free heap
    except (OSError, AttributeError):
        pass


def _default_workers(sites: int, patients: int) -> int:
    """Worker processes: one per core (at most the sites), one for small runs."""
    if patients < 20_000:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, sites))


def generate(out: Path, sites: int = 4, patients: int = 120, seed: int = 7,
             submissions_per_site: int = DEFAULTS["submissions_per_site"],
             duplicate_rate: float = DEFAULTS["duplicate_rate"],
             correction_rate: float = DEFAULTS["correction_rate"],
             retraction_rate: float = DEFAULTS["retraction_rate"],
             late_parent_rate: float = DEFAULTS["late_parent_rate"],
             invalid_rate: float = DEFAULTS["invalid_rate"],
             progress: Callable[[str], object] | None = print,
             workers: int | None = None) -> GenerateSummary:
    """Write `sites` x `submissions_per_site` contract-v1 submissions under `out` and say
    what was written. Each rate is a share of the records of every table of every site; a
    feature that needs a later submission (all but invalid rows) can only use records not
    in the last one, so with a single submission per site those counts are 0. Refuses to
    write over an existing submission folder.

    Sites are simulated and written one at a time, each from its own random stream, by
    `workers` processes (default: one per core for 20,000 patients or more, else 1); the
    files do not depend on the number of workers."""
    out = Path(out)
    rates = dict(duplicate_rate=duplicate_rate, correction_rate=correction_rate, retraction_rate=retraction_rate,
                 late_parent_rate=late_parent_rate, invalid_rate=invalid_rate)
    for name, value in rates.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, not {value}")
    if sites < 1 or patients < 0:
        raise ValueError("sites must be at least 1 and patients at least 0")
    max_subs = (CUTOFF_DAY - START_DAY) // 3
    if not 1 <= submissions_per_site <= max_subs:
        raise ValueError(f"submissions_per_site must be 1 to {max_subs}")
    say = progress or (lambda _msg: None)
    n_subs = submissions_per_site

    # the root stream draws the sites' sizes and export times; each site has its own stream
    entropy = np.random.SeedSequence(seed)
    root = np.random.default_rng(entropy)
    site_patients = root.multinomial(patients, root.dirichlet(np.full(sites, 8.0)))
    exports = _exports(root, sites, n_subs)
    site_seeds = entropy.spawn(sites)
    site_ids = tuple(f"SITE-{s:03d}" for s in range(1, sites + 1))
    export_text = _ts(exports.ravel()).reshape(exports.shape)
    sub_ids = [[f"{export_text[s, k][:10]}-{k + 1:03d}" for k in range(n_subs)] for s in range(sites)]
    existing = [out / site_ids[s] / sub_ids[s][k] for s in range(sites) for k in range(n_subs)
                if (out / site_ids[s] / sub_ids[s][k]).exists()]
    if existing:
        raise FileExistsError(f"{existing[0]} already exists: a sent submission is never rewritten; "
                              "generate into an empty folder")

    jobs = [_SiteJob(out, site_ids[s], s + 1, int(site_patients[s]), site_seeds[s], exports[s:s + 1],
                     tuple(sub_ids[s]), tuple(str(x) for x in export_text[s]), rates) for s in range(sites)]
    workers = _default_workers(sites, patients) if workers is None else max(1, min(int(workers), sites))
    say(f"generate: simulating {patients} patients at {sites} sites (seed {seed}, {workers} worker"
        f"{'s' if workers > 1 else ''})")
    if workers == 1:
        results = map(_generate_site, jobs)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_worker_init)
        results = pool.map(_generate_site, jobs)

    submissions: list[SubmissionSummary] = []
    invalid_rows: list[InvalidRow] = []
    site_results: list[_SiteResult] = []
    try:
        for s, res in enumerate(results):
            for sub in res.submissions:
                say(f"generate: wrote {out / sub.site_id / sub.submission_id} ({sub.total_rows} rows)")
            submissions.extend(res.submissions)
            invalid_rows.extend(InvalidRow(site_ids[s], sub_ids[s][k], FILE[TABLES[ti]], row, INVALID_RULES[TABLES[ti]][rule])
                                for k, ti, row, rule in res.invalid_at.tolist())
            res.submissions, res.invalid_at = [], None
            site_results.append(res)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)

    def total(name: str) -> dict[str, int]:
        out_: dict[str, int] = {}
        for res in site_results:
            for key, value in getattr(res, name).items():
                out_[key] = out_.get(key, 0) + value
        return out_

    summary = GenerateSummary(
        out=out, seed=seed, sites=site_ids, submissions_per_site=n_subs,
        submissions=tuple(submissions), rows=total("rows"),
        valid=total("valid"), corrections=total("corrections"), duplicates=total("duplicates"),
        invalid=total("invalid"), retractions=total("retractions"),
        late_parents=sum(res.late_parents for res in site_results), orphans=total("orphans"),
        clinical=total("clinical"), invalid_rows=tuple(invalid_rows))
    say(f"generate: {summary.total_rows} rows in {len(submissions)} submissions: "
        f"{sum(summary.valid.values())} valid, {sum(summary.corrections.values())} corrections, "
        f"{summary.expected_duplicates} duplicates, {summary.expected_quarantined} invalid, "
        f"{summary.rows['retractions.csv']} retractions, {summary.late_parents} late parents")
    return summary


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `generate` options other than --out; their dests are generate()'s keywords."""
    parser.add_argument("--sites", type=int, default=4, help="number of sites (default 4)")
    parser.add_argument("--patients", type=int, default=120, help="patients over all sites (default 120)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--submissions-per-site", type=int, default=DEFAULTS["submissions_per_site"],
                        help=f"submissions per site (default {DEFAULTS['submissions_per_site']})")
    for name, words in (("duplicate_rate", "rows re-sent unchanged in the next submission"),
                        ("correction_rate", "records corrected in a later submission"),
                        ("retraction_rate", "records retracted in a later submission"),
                        ("late_parent_rate", "reactions sent before their infusion"),
                        ("invalid_rate", "rows breaking one one-row rule")):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=DEFAULTS[name],
                            help=f"share of records: {words} (default {DEFAULTS[name]})")


GENERATE_KEYWORDS = ("sites", "patients", "seed", "submissions_per_site", "duplicate_rate", "correction_rate",
                     "retraction_rate", "late_parent_rate", "invalid_rate")


def kwargs_from_args(args: argparse.Namespace) -> dict:
    """generate()'s keywords from parsed arguments (ignores --out, --home, the subcommand...)."""
    return {k: getattr(args, k) for k in GENERATE_KEYWORDS if hasattr(args, k)}


def summary_json(summary: GenerateSummary) -> str:
    return json.dumps(summary.to_dict(), indent=2, sort_keys=True)
