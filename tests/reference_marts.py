"""marts-v1 recomputed in plain Python from the submissions themselves: the contracts as code.

Input: the contract-v1 submissions a test wrote (its own Python objects, in the order the
pipeline ingests them). Nothing here reads events, Parquet, DuckDB, SQL or the pipeline's
code, on purpose: `tests/test_property.py` compares the warehouse with what this module says
the contracts mean.

Sources of each rule:
  [sub]    /work/shared/contracts/site-submission-v1.md
  [marts]  /work/shared/contracts/marts-v1.md
  [notes]  docs/contract-notes.md        (readings where the contracts are silent)
  [wh]     warehouse/README.md           (readings where the contracts are silent)

Values in a row are typed the way the CSV cell means them: int, float, str, bool, list of
str, `datetime.date` for a date, an aware `datetime.datetime` for a timestamp (in the
site's own offset), None for an empty cell. A row whose value has another type or is out
of range breaks a one-row rule, as its CSV cell would.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime

from scipy.stats import binom

# ------------------------------------------------------------------ vocabularies [sub]

SEX = {"female", "male", "unknown"}
TUMOR_TYPES = {"cervical", "gastric_gej", "hcc", "nsclc", "sclc", "lcnec", "npc", "escc",
               "endometrial", "rectal", "biliary", "other"}
CHEMOTHERAPY = {"capecitabine", "oxaliplatin", "s1", "paclitaxel", "nab_paclitaxel", "docetaxel",
                "carboplatin", "cisplatin", "fluorouracil", "etoposide", "pemetrexed",
                "gemcitabine", "irinotecan", "leucovorin"}
BEVACIZUMAB = {"bevacizumab"}
TKI = {"apatinib", "lenvatinib", "anlotinib", "regorafenib", "fruquintinib"}
COMBINATION_AGENTS = CHEMOTHERAPY | BEVACIZUMAB | TKI | {"radiotherapy", "other"}
PREMEDICATION = {"dexamethasone", "methylprednisolone", "hydrocortisone", "diphenhydramine",
                 "chlorpheniramine", "promethazine", "cetirizine", "famotidine", "ranitidine",
                 "acetaminophen", "montelukast"}
SYMPTOMS = {"rash", "pruritus", "flushing", "urticaria", "angioedema", "hypotension",
            "hypertension", "tachycardia", "dyspnea", "bronchospasm", "hypoxia", "chest_tightness",
            "dizziness", "syncope", "abdominal_pain", "nausea", "vomiting", "fever", "chills",
            "rigors", "back_pain", "headache", "weakness"}
REACTION_TREATMENT = {"infusion_stopped", "infusion_slowed", "dexamethasone", "methylprednisolone",
                      "hydrocortisone", "diphenhydramine", "chlorpheniramine", "promethazine",
                      "famotidine", "epinephrine", "iv_fluids", "oxygen", "bronchodilator",
                      "vasopressor", "icu_admission"}
IRAE_CATEGORIES = {"hepatitis", "pneumonitis", "colitis", "dermatitis", "ten_sjs", "thyroiditis",
                   "hypophysitis", "adrenal_insufficiency", "type1_diabetes", "myocarditis",
                   "nephritis", "myositis", "arthritis", "pancreatitis", "other"}
IRAE_TREATMENT = {"corticosteroids", "infliximab", "adalimumab", "mycophenolate", "tocilizumab",
                  "ivig", "hormone_replacement", "insulin", "drug_withheld", "drug_discontinued"}
PROTOCOLS = {"standard", "extended", "stepwise", "desensitization"}
REACTION_TERMS = {"infusion_related_reaction", "anaphylaxis", "allergic_reaction",
                  "cytokine_release_syndrome"}
OUTCOMES = {"recovered", "recovering", "not_recovered", "fatal"}
RECORD_TYPES = {"patient", "infusion", "reaction", "irae"}

Z = 1.959964  # [marts] 95% Wilson score interval


@dataclass
class Submission:
    """One submission folder: `files` maps a CSV name to its rows, in file order."""
    site_id: str
    submission_id: str
    exported_at: datetime
    files: dict[str, list[dict]]


# ------------------------------------------------------------------ one-row rules [sub]

def _is_int(v, low, high) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_text(v) -> bool:
    return isinstance(v, str) and v != ""


def _is_date(v) -> bool:
    return isinstance(v, date) and not isinstance(v, datetime)


def _is_timestamp(v) -> bool:
    return isinstance(v, datetime) and v.tzinfo is not None


def _is_list(v, vocabulary, min_items=0) -> bool:
    return isinstance(v, list) and len(v) >= min_items and all(t in vocabulary for t in v)


def _fatal_iff_grade5(row) -> bool:
    return (row["outcome"] == "fatal") == (row["grade"] == 5)


def broken_rules(file: str, row: dict) -> list[str]:
    """The one-row rules of site-submission-v1 that `row` breaks (empty: the row is valid).
    "Not after recorded_at": a date against recorded_at's calendar date at the site's own
    offset, a timestamp against recorded_at as an instant [notes 2]."""
    r = row
    ok_recorded = _is_timestamp(r.get("recorded_at"))
    checks: dict[str, bool] = {"recorded_at": ok_recorded}
    if file == "patients.csv":
        checks.update(
            patient_ref=_is_text(r["patient_ref"]),
            sex=r["sex"] in SEX,
            age_at_first_dose=_is_int(r["age_at_first_dose"], 18, 110),
            tumor_type=r["tumor_type"] in TUMOR_TYPES,
            weight_kg=r["weight_kg"] is None or (_is_number(r["weight_kg"]) and 25 <= r["weight_kg"] <= 250),
            first_dose_date=_is_date(r["first_dose_date"])
            and not (ok_recorded and r["first_dose_date"] > r["recorded_at"].date()))
    elif file == "infusions.csv":
        checks.update(
            infusion_ref=_is_text(r["infusion_ref"]),
            patient_ref=_is_text(r["patient_ref"]),
            cycle=_is_int(r["cycle"], 1, 200),
            started_at=_is_timestamp(r["started_at"])
            and not (ok_recorded and r["started_at"] > r["recorded_at"]),
            dose_mg=_is_number(r["dose_mg"]) and 0 < r["dose_mg"] <= 3000,
            planned_duration_min=_is_int(r["planned_duration_min"], 10, 1440),
            protocol=r["protocol"] in PROTOCOLS,
            combination=_is_list(r["combination"], COMBINATION_AGENTS),
            premedication=_is_list(r["premedication"], PREMEDICATION),
            completed=isinstance(r["completed"], bool))
    elif file == "reactions.csv":
        checks.update(
            reaction_ref=_is_text(r["reaction_ref"]),
            infusion_ref=_is_text(r["infusion_ref"]),
            onset_min=_is_int(r["onset_min"], 0, 1440),
            term=r["term"] in REACTION_TERMS,
            grade=_is_int(r["grade"], 1, 5),
            symptoms=_is_list(r["symptoms"], SYMPTOMS, min_items=1),
            treatment=_is_list(r["treatment"], REACTION_TREATMENT),
            outcome=r["outcome"] in OUTCOMES and _fatal_iff_grade5(r))
    elif file == "iraes.csv":
        checks.update(
            irae_ref=_is_text(r["irae_ref"]),
            patient_ref=_is_text(r["patient_ref"]),
            onset_date=_is_date(r["onset_date"]),  # no "not after recorded_at" [notes 2]
            category=r["category"] in IRAE_CATEGORIES,
            grade=_is_int(r["grade"], 1, 5),
            treatment=_is_list(r["treatment"], IRAE_TREATMENT),
            outcome=r["outcome"] in OUTCOMES and _fatal_iff_grade5(r))  # [notes 4]
    elif file == "retractions.csv":
        checks.update(
            record_type=r["record_type"] in RECORD_TYPES,
            ref=_is_text(r["ref"]),
            reason=_is_text(r["reason"]) and len(r["reason"]) <= 500)
    else:
        raise ValueError(file)
    return [column for column, ok in checks.items() if not ok]


# ------------------------------------------------------------------ versions [sub]

def record_key(file: str, row: dict) -> tuple:
    """A record's key within its site: its *_ref; a retraction is (record_type, ref) [notes 5]."""
    if file == "retractions.csv":
        return (row["record_type"], row["ref"])
    return (row[{"patients.csv": "patient_ref", "infusions.csv": "infusion_ref",
                 "reactions.csv": "reaction_ref", "iraes.csv": "irae_ref"}[file]],)


def content(row: dict) -> dict:
    """What "identical content" compares: every column but recorded_at."""
    return {k: v for k, v in row.items() if k != "recorded_at"}


@dataclass
class Intake:
    """What ingesting the submissions in order gives: each row an event, a duplicate or
    quarantined; the accepted versions of every record."""
    counts: dict[tuple[str, str], dict[str, int]]          # (site, submission) -> rows, events, ...
    versions: dict[tuple[str, str], dict[tuple, list[dict]]]  # (site, file) -> key -> versions


def take_in(submissions: list[Submission]) -> Intake:
    """Version = (site, key, recorded_at). Across all submissions of a site, in ingest order:
    a new version is an event; the same version again with identical content is a counted
    duplicate; with different content a quarantined conflict (the first accepted stays).
    A row that breaks a one-row rule is quarantined before any of this."""
    seen: dict[tuple, dict] = {}
    counts: dict = {}
    versions: dict = {}
    for sub in submissions:
        c = counts[(sub.site_id, sub.submission_id)] = dict(rows=0, events=0, duplicates=0, quarantined=0)
        for file, rows in sub.files.items():
            for row in rows:
                c["rows"] += 1
                if broken_rules(file, row):
                    c["quarantined"] += 1
                    continue
                version = (sub.site_id, file, record_key(file, row), row["recorded_at"])
                if version in seen:  # recorded_at compared as an instant
                    c["duplicates" if content(seen[version]) == content(row) else "quarantined"] += 1
                    continue
                seen[version] = row
                c["events"] += 1
                versions.setdefault((sub.site_id, file), {}).setdefault(record_key(file, row), []).append(row)
    return Intake(counts, versions)


# ------------------------------------------------------------------ current records [marts]

@dataclass
class Current:
    """Records that count in figures, by (site_id, ref)."""
    patients: dict[tuple[str, str], dict]
    infusions: dict[tuple[str, str], dict]
    reactions: dict[tuple[str, str], dict]
    iraes: dict[tuple[str, str], dict]


def current_records(intake: Intake, sites: set[str]) -> Current:
    def latest(file: str) -> dict[tuple[str, str], dict]:
        """The current version of each record: the one with the latest recorded_at."""
        return {(site, key[0]): max(vs, key=lambda v: v["recorded_at"])
                for site in sites
                for key, vs in intake.versions.get((site, file), {}).items()}

    # A retraction removes its record whatever the order of recorded_at, also a version
    # arriving after it [notes marts-1]; retractions themselves are not corrected away.
    retracted = {(site, record_type, ref)
                 for site in sites
                 for (record_type, ref) in intake.versions.get((site, "retractions.csv"), {})}

    patients = {(s, ref): p for (s, ref), p in latest("patients.csv").items()
                if (s, "patient", ref) not in retracted}

    infusions = {}
    for (s, ref), inf in latest("infusions.csv").items():
        patient = patients.get((s, inf["patient_ref"]))
        if (s, "infusion", ref) in retracted:
            continue
        if patient is None:  # orphan (patient never arrived) or patient retracted
            continue
        # started_at not before first_dose_date [sub], on the site's calendar date [wh]
        if inf["started_at"].date() < patient["first_dose_date"]:
            continue
        infusions[(s, ref)] = inf

    # a reaction counts when its infusion counts (orphan, parent retracted, parent excluded [wh])
    reactions = {(s, ref): r for (s, ref), r in latest("reactions.csv").items()
                 if (s, "reaction", ref) not in retracted and (s, r["infusion_ref"]) in infusions}

    iraes = {}
    for (s, ref), e in latest("iraes.csv").items():
        patient = patients.get((s, e["patient_ref"]))
        if (s, "irae", ref) in retracted or patient is None:
            continue
        if e["onset_date"] < patient["first_dose_date"]:  # [sub] not before first_dose_date
            continue
        iraes[(s, ref)] = e
    return Current(patients, infusions, reactions, iraes)


# ------------------------------------------------------------------ figures [marts]

def rate(x: int, n: int) -> float | None:
    return x / n if n > 0 else None


def wilson(x: int, n: int) -> tuple[float | None, float | None]:
    """95% Wilson score interval of x successes in n trials: null when n is 0."""
    if n == 0:
        return None, None
    p = x / n
    denominator = 1 + Z * Z / n
    centre = (p + Z * Z / (2 * n)) / denominator
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def regimen_class(combination: list[str]) -> str:
    c = any(a in CHEMOTHERAPY for a in combination)
    b = any(a in BEVACIZUMAB for a in combination)
    t = any(a in TKI for a in combination)
    if not combination:
        return "monotherapy"
    if c and t:
        return "chemo_tki"
    if c and b:
        return "chemo_bevacizumab"
    if c:
        return "chemotherapy"
    if t:
        return "tki"
    return "other"  # bevacizumab alone, only radiotherapy / other


@dataclass
class Infusion:
    """A current infusion with what the figures need from it."""
    site_id: str
    ref: str
    patient: tuple[str, str]          # (site_id, patient_ref)
    cycle: int
    tumor_type: str                   # the patient's current tumor_type
    regimen_class: str
    started_at: datetime
    started_local_date: date
    protocol: str
    premedicated: bool
    completed: bool
    grades: list[int]                 # grades of its current reactions

    @property
    def has_reaction(self) -> bool:
        return bool(self.grades)

    @property
    def max_grade(self) -> int | None:
        return max(self.grades) if self.grades else None

    @property
    def grade3plus(self) -> bool:
        return bool(self.grades) and max(self.grades) >= 3


def infusion_facts(cur: Current) -> list[Infusion]:
    out = []
    for (s, ref), inf in sorted(cur.infusions.items()):
        patient = cur.patients[(s, inf["patient_ref"])]
        out.append(Infusion(
            site_id=s, ref=ref, patient=(s, inf["patient_ref"]), cycle=inf["cycle"],
            tumor_type=patient["tumor_type"], regimen_class=regimen_class(inf["combination"]),
            started_at=inf["started_at"], started_local_date=inf["started_at"].date(),
            protocol=inf["protocol"], premedicated=bool(inf["premedication"]),
            completed=inf["completed"],
            grades=[r["grade"] for (rs, _), r in cur.reactions.items()
                    if rs == s and r["infusion_ref"] == ref]))
    return out


def rate_figures(infusions: list[Infusion]) -> dict:
    n = len(infusions)
    x = sum(i.has_reaction for i in infusions)
    g = sum(i.grade3plus for i in infusions)
    ci_low, ci_high = wilson(x, n)
    g_low, g_high = wilson(g, n)
    return dict(infusions=n, reaction_infusions=x, reaction_rate=rate(x, n), ci_low=ci_low,
                ci_high=ci_high, grade3plus_infusions=g, grade3plus_rate=rate(g, n),
                grade3plus_ci_low=g_low, grade3plus_ci_high=g_high,
                patients=len({i.patient for i in infusions}))


def by(infusions: list[Infusion], attribute: str) -> dict:
    groups: dict = {}
    for i in infusions:
        groups.setdefault(getattr(i, attribute), []).append(i)
    return groups


def rates_by(infusions: list[Infusion], attribute: str) -> dict:
    """One row per value with at least one infusion."""
    return {(value,): dict({attribute: value}, **rate_figures(group))
            for value, group in by(infusions, attribute).items()}


def rates_by_site(infusions: list[Infusion], sites: set[str]) -> dict:
    """Every site with an accepted submission [wh]; expected from the pooled rate of each
    (cycle, tumor_type) stratum; funnel = exact binomial 0.001 and 0.999 quantiles."""
    strata: dict = {}
    for i in infusions:
        strata.setdefault((i.cycle, i.tumor_type), []).append(i)
    pooled = {k: rate(sum(i.has_reaction for i in g), len(g)) for k, g in strata.items()}
    out = {}
    for site in sites:
        mine = [i for i in infusions if i.site_id == site]
        row = dict(site_id=site, **rate_figures(mine))
        expected = sum(pooled[(i.cycle, i.tumor_type)] for i in mine)  # 0 for no infusion
        n, x = row["infusions"], row["reaction_infusions"]
        row["expected_reaction_infusions"] = float(expected)
        row["observed_to_expected"] = x / expected if expected > 0 else None
        if n > 0:
            p = min(1.0, max(0.0, expected / n))
            low, high = int(binom.ppf(0.001, n, p)), int(binom.ppf(0.999, n, p))
            row.update(funnel_low=low, funnel_high=high, outside_funnel=x < low or x > high)
        else:
            row.update(funnel_low=None, funnel_high=None, outside_funnel=None)
        out[(site,)] = row
    return out


def rechallenge_outcomes(infusions: list[Infusion]) -> dict:
    """Index reaction: the reaction on the patient's earliest infusion (by started_at; ties
    by cycle, then infusion_ref [wh]) that has one. Rechallenge: the first infusion started
    strictly after it. Tier: failed = not completed or any grade >= 3; tolerated = completed,
    no reaction; breakthrough = completed, reactions all grade 1-2."""
    rows: dict = {}
    for patient, mine in by(infusions, "patient").items():
        mine = sorted(mine, key=lambda i: (i.started_at, i.cycle, i.ref))
        with_reaction = [i for i in mine if i.has_reaction]
        if not with_reaction:
            continue
        index = with_reaction[0]
        band = "3+" if index.max_grade >= 3 else "1-2"
        later = [i for i in mine if i.started_at > index.started_at]
        grain = (later[0].protocol, later[0].premedicated, band) if later else (None, None, band)
        row = rows.setdefault(grain, dict(protocol=grain[0], premedicated=grain[1], index_grade_band=band,
                                          patients_with_index_reaction=0, rechallenged=0,
                                          tolerated=0, breakthrough=0, failed=0))
        row["patients_with_index_reaction"] += 1
        if later:
            r = later[0]
            row["rechallenged"] += 1
            if not r.completed or r.grade3plus:
                row["failed"] += 1
            elif not r.has_reaction:
                row["tolerated"] += 1
            else:
                row["breakthrough"] += 1
    for row in rows.values():
        success = row["tolerated"] + row["breakthrough"]
        row["success_rate"] = rate(success, row["rechallenged"])
        row["ci_low"], row["ci_high"] = wilson(success, row["rechallenged"])
    return rows


def irae_monthly(cur: Current, infusions: list[Infusion]) -> dict:
    """One row per (month of onset_date, category) with a current irAE; treated_patients =
    distinct patients with a current infusion whose local start date is in that month [notes 9]."""
    rows: dict = {}
    for (s, _), e in cur.iraes.items():
        month = e["onset_date"].replace(day=1)
        row = rows.setdefault((month, e["category"]), dict(month=month, category=e["category"], events=0,
                                                           grade3plus_events=0, patients=set()))
        row["events"] += 1
        row["grade3plus_events"] += e["grade"] >= 3
        row["patients"].add((s, e["patient_ref"]))
    for (month, _), row in rows.items():
        row["patients"] = len(row["patients"])
        row["treated_patients"] = len({i.patient for i in infusions if i.started_local_date.replace(day=1) == month})
    return rows


def submissions_table(submissions: list[Submission], intake: Intake) -> dict:
    return {(s.site_id, s.submission_id): dict(site_id=s.site_id, submission_id=s.submission_id,
                                                exported_at=s.exported_at, status="accepted",
                                                **intake.counts[(s.site_id, s.submission_id)])
            for s in submissions}


def marts(submissions: list[Submission]) -> dict[str, dict[tuple, dict]]:
    """Every marts-v1 table (but literature), as {grain: row}, from these submissions."""
    intake = take_in(submissions)
    sites = {s.site_id for s in submissions}
    cur = current_records(intake, sites)
    infusions = infusion_facts(cur)
    return {
        "reaction_rate_by_cycle": rates_by(infusions, "cycle"),
        "reaction_rate_by_tumor_type": rates_by(infusions, "tumor_type"),
        "reaction_rate_by_regimen": rates_by(infusions, "regimen_class"),
        "reaction_rate_by_site": rates_by_site(infusions, sites),
        "rechallenge_outcomes": rechallenge_outcomes(infusions),
        "irae_monthly": irae_monthly(cur, infusions),
        "submissions": submissions_table(submissions, intake),
    }


GRAINS = {
    "reaction_rate_by_cycle": ("cycle",),
    "reaction_rate_by_tumor_type": ("tumor_type",),
    "reaction_rate_by_regimen": ("regimen_class",),
    "reaction_rate_by_site": ("site_id",),
    "rechallenge_outcomes": ("protocol", "premedicated", "index_grade_band"),
    "irae_monthly": ("month", "category"),
    "submissions": ("site_id", "submission_id"),
}
