"""Site submission contract v1 (../shared/contracts/site-submission-v1.md) as data.

Everything the pipeline, its GX suites, the generator and the tests know about the
contract is read from here: file names, columns, types, ranges and vocabularies.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
ID_PATTERN_SITE = re.compile(r"^[A-Za-z0-9_-]{2,32}$")
ID_PATTERN_SUBMISSION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

TUMOR_TYPES = ("cervical", "gastric_gej", "hcc", "nsclc", "sclc", "lcnec", "npc", "escc",
               "endometrial", "rectal", "biliary", "other")
CHEMOTHERAPY = ("capecitabine", "oxaliplatin", "s1", "paclitaxel", "nab_paclitaxel", "docetaxel",
                "carboplatin", "cisplatin", "fluorouracil", "etoposide", "pemetrexed",
                "gemcitabine", "irinotecan", "leucovorin")
ANTI_ANGIOGENIC = ("bevacizumab",)
TKI = ("apatinib", "lenvatinib", "anlotinib", "regorafenib", "fruquintinib")
OTHER_AGENTS = ("radiotherapy", "other")
COMBINATION_AGENTS = CHEMOTHERAPY + ANTI_ANGIOGENIC + TKI + OTHER_AGENTS
PREMEDICATION = ("dexamethasone", "methylprednisolone", "hydrocortisone", "diphenhydramine",
                 "chlorpheniramine", "promethazine", "cetirizine", "famotidine", "ranitidine",
                 "acetaminophen", "montelukast")
SYMPTOMS = ("rash", "pruritus", "flushing", "urticaria", "angioedema", "hypotension",
            "hypertension", "tachycardia", "dyspnea", "bronchospasm", "hypoxia", "chest_tightness",
            "dizziness", "syncope", "abdominal_pain", "nausea", "vomiting", "fever", "chills",
            "rigors", "back_pain", "headache", "weakness")
REACTION_TREATMENT = ("infusion_stopped", "infusion_slowed", "dexamethasone", "methylprednisolone",
                      "hydrocortisone", "diphenhydramine", "chlorpheniramine", "promethazine",
                      "famotidine", "epinephrine", "iv_fluids", "oxygen", "bronchodilator",
                      "vasopressor", "icu_admission")
IRAE_CATEGORIES = ("hepatitis", "pneumonitis", "colitis", "dermatitis", "ten_sjs", "thyroiditis",
                   "hypophysitis", "adrenal_insufficiency", "type1_diabetes", "myocarditis",
                   "nephritis", "myositis", "arthritis", "pancreatitis", "other")
IRAE_TREATMENT = ("corticosteroids", "infliximab", "adalimumab", "mycophenolate", "tocilizumab",
                  "ivig", "hormone_replacement", "insulin", "drug_withheld", "drug_discontinued")
SEX = ("female", "male", "unknown")
PROTOCOLS = ("standard", "extended", "stepwise", "desensitization")
REACTION_TERMS = ("infusion_related_reaction", "anaphylaxis", "allergic_reaction",
                  "cytokine_release_syndrome")
OUTCOMES = ("recovered", "recovering", "not_recovered", "fatal")
RECORD_TYPES = ("patient", "infusion", "reaction", "irae")
BOOLEANS = ("true", "false")


@dataclass(frozen=True)
class Column:
    """One CSV column: its type and the one-row rules the contract gives it."""
    name: str
    kind: str  # string | int | float | date | timestamp | enum | list | bool
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    vocabulary: tuple[str, ...] = ()
    strict_min: bool = False  # "greater than" rather than "at least"
    min_items: int = 0  # for lists
    max_length: int | None = None  # for strings
    personal: bool = False  # pseudonymized at ingestion


@dataclass(frozen=True)
class FileSpec:
    """One CSV file of a submission: its record type, key and columns."""
    file: str
    record_type: str
    key: str | None
    columns: tuple[Column, ...]
    # (column, column) pairs: the first must not be after the second (row-level rule)
    not_after: tuple[tuple[str, str], ...] = field(default=())
    fatal_iff_grade5: bool = False
    contract: str = "site-submission-v1"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


RECORDED_AT = Column("recorded_at", "timestamp")

PATIENTS = FileSpec("patients.csv", "patient", "patient_ref", (
    Column("patient_ref", "string", personal=True),
    Column("sex", "enum", vocabulary=SEX),
    Column("age_at_first_dose", "int", min=18, max=110),
    Column("tumor_type", "enum", vocabulary=TUMOR_TYPES),
    Column("weight_kg", "float", nullable=True, min=25, max=250),
    Column("first_dose_date", "date"),
    RECORDED_AT,
), not_after=(("first_dose_date", "recorded_at"),))

INFUSIONS = FileSpec("infusions.csv", "infusion", "infusion_ref", (
    Column("infusion_ref", "string"),
    Column("patient_ref", "string", personal=True),
    Column("cycle", "int", min=1, max=200),
    Column("started_at", "timestamp"),
    Column("dose_mg", "float", min=0, max=3000, strict_min=True),
    Column("planned_duration_min", "int", min=10, max=1440),
    Column("protocol", "enum", vocabulary=PROTOCOLS),
    Column("combination", "list", vocabulary=COMBINATION_AGENTS),
    Column("premedication", "list", vocabulary=PREMEDICATION),
    Column("completed", "bool", vocabulary=BOOLEANS),
    RECORDED_AT,
), not_after=(("started_at", "recorded_at"),))

REACTIONS = FileSpec("reactions.csv", "reaction", "reaction_ref", (
    Column("reaction_ref", "string"),
    Column("infusion_ref", "string"),
    Column("onset_min", "int", min=0, max=1440),
    Column("term", "enum", vocabulary=REACTION_TERMS),
    Column("grade", "int", min=1, max=5),
    Column("symptoms", "list", vocabulary=SYMPTOMS, min_items=1),
    Column("treatment", "list", vocabulary=REACTION_TREATMENT),
    Column("outcome", "enum", vocabulary=OUTCOMES),
    RECORDED_AT,
), fatal_iff_grade5=True)

IRAES = FileSpec("iraes.csv", "irae", "irae_ref", (
    Column("irae_ref", "string"),
    Column("patient_ref", "string", personal=True),
    Column("onset_date", "date"),
    Column("category", "enum", vocabulary=IRAE_CATEGORIES),
    Column("grade", "int", min=1, max=5),
    Column("treatment", "list", vocabulary=IRAE_TREATMENT),
    Column("outcome", "enum", vocabulary=OUTCOMES),
    RECORDED_AT,
), fatal_iff_grade5=True)  # onset_date vs recorded_at: not a v1 rule, see docs/contract-notes.md

RETRACTIONS = FileSpec("retractions.csv", "retraction", None, (
    Column("record_type", "enum", vocabulary=RECORD_TYPES),
    Column("ref", "string"),
    Column("reason", "string", max_length=500),
    RECORDED_AT,
))

FILES: dict[str, FileSpec] = {s.file: s for s in (PATIENTS, INFUSIONS, REACTIONS, IRAES, RETRACTIONS)}
