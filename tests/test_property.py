"""Property test (issue 3): random sequences of small submissions, ingested and built, give
exactly the marts-v1 figures that `reference_marts.py` computes from the same submissions.

The generator draws, for 2 or 3 sites (each with its own UTC offset), a handful of patients,
infusions, reactions, irAEs and retractions, each record in 1 to 3 versions (corrections
with a later recorded_at and 1-2 changed fields, possibly moving it to another parent),
retractions (some of records that never arrive), parents that never arrive (P9, I9), then
adds re-sent duplicates, conflicts (same key and recorded_at, other content) and invalid
rows, and deals the rows into the site's 1 or 2 submissions (a file's rows all in one, or
each row in one of its own drawing): so children arrive before their parents, corrections
before the version they correct, retractions before their record. Dates sit around month
ends and times around midnight, so the local-date rules (first_dose_date, month of an
infusion) are exercised; some sites get a cohort of 12 infusions with or without
reactions, so that a site can fall outside the funnel. `edge_cases()` is always run too.

Each example ingests the submissions in two steps, builds as of a time between them and
builds again over everything, and compares every marts-v1 table (but literature) with the
reference over the earlier submissions and over all of them; it also checks that every
submission's rows = events + duplicates + quarantined, in the ingest reports and in
marts.submissions, and that the second ingest skips the submissions already ingested.

Cost: GX validation is ~0.4 s of CPU per (submission, file), so 15 examples take ~1.5-2
minutes; PROPERTY_EXAMPLES=100 (for instance) runs more of them.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import duckdb
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import reference_marts as ref
from safety_ledger.build import build
from safety_ledger.home import Home
from safety_ledger.ingest import ingest_landing
from safety_ledger.submission_writer import write_submission

QUIET = dict(progress=lambda _: None)
FILES = ("patients.csv", "infusions.csv", "reactions.csv", "iraes.csv", "retractions.csv")
SITES = (("SITE-A", 8), ("SITE-B", -5), ("SITE-C", 0))   # site, UTC offset in hours
JAN30, JAN31, FEB1, FEB28, MAR1, MAR31, APR2 = (date(2025, 1, 30), date(2025, 1, 31), date(2025, 2, 1),
                                                 date(2025, 2, 28), date(2025, 3, 1), date(2025, 3, 31),
                                                 date(2025, 4, 2))
# mostly first doses before the infusions and irAEs, sometimes not (a repeated day is likelier)
FIRST_DOSE_DAYS = (JAN30, JAN31, JAN30, JAN31, FEB1, MAR1)
INFUSION_DAYS = (FEB1, JAN31, FEB28, MAR1, MAR31, JAN30, FEB1)
ONSET_DAYS = (FEB28, MAR1, FEB1, MAR31, JAN31, APR2, JAN30)
TIMES = (time(9, 0), time(0, 30), time(23, 30))
TUMORS = ("cervical", "nsclc", "hcc")
COMBINATIONS = ([], ["paclitaxel"], ["paclitaxel", "carboplatin"], ["bevacizumab"],
                ["paclitaxel", "bevacizumab"], ["apatinib"], ["bevacizumab", "apatinib"],
                ["capecitabine", "apatinib", "bevacizumab"], ["radiotherapy"],
                ["other", "capecitabine"], ["radiotherapy", "lenvatinib"], ["other"])
PREMEDICATIONS = ([], ["dexamethasone"], ["dexamethasone", "diphenhydramine"])
REF_COLUMN = {"patients.csv": "patient_ref", "infusions.csv": "infusion_ref",
              "reactions.csv": "reaction_ref", "iraes.csv": "irae_ref"}
RECORD_TYPE = {"patients.csv": "patient", "infusions.csv": "infusion",
               "reactions.csv": "reaction", "iraes.csv": "irae"}
PREFIX = {"patients.csv": "P", "infusions.csv": "I", "reactions.csv": "R", "iraes.csv": "E"}


# ------------------------------------------------------------------ the generator


def field_strategies(tz, patient_refs, infusion_refs) -> dict[str, dict[str, st.SearchStrategy]]:
    """Valid values of each content column (a parent may be one that never arrives)."""
    stamp = st.builds(lambda d, t: datetime.combine(d, t, tzinfo=tz), st.sampled_from(INFUSION_DAYS),
                      st.sampled_from(TIMES + TIMES[:1]))  # ties in started_at are likely
    patient = st.sampled_from(patient_refs * 3 + ["P9"])   # P9, I9 never arrive
    return {
        "patients.csv": dict(
            sex=st.sampled_from(("female", "male", "unknown")),
            age_at_first_dose=st.sampled_from((60, 18, 110)),
            tumor_type=st.sampled_from(TUMORS),
            weight_kg=st.sampled_from((None, 70.5, 25.0, 250.0)),
            first_dose_date=st.sampled_from(FIRST_DOSE_DAYS)),
        "infusions.csv": dict(
            patient_ref=patient,
            cycle=st.integers(1, 3),
            started_at=stamp,
            dose_mg=st.sampled_from((250.0, 187.5)),
            planned_duration_min=st.sampled_from((60, 10, 1440)),
            protocol=st.sampled_from(("standard", "extended", "stepwise", "desensitization")),
            combination=st.sampled_from(COMBINATIONS),
            premedication=st.sampled_from(PREMEDICATIONS),
            completed=st.booleans()),
        "reactions.csv": dict(
            # several reactions on I1 and I2 are likely (index reaction: the max grade)
            infusion_ref=st.sampled_from(infusion_refs[:2] * 3 + infusion_refs * 2 + ["I9"]),
            onset_min=st.sampled_from((10, 0, 1440)),
            term=st.sampled_from(("infusion_related_reaction", "anaphylaxis", "allergic_reaction",
                                  "cytokine_release_syndrome")),
            grade=st.integers(1, 5),
            symptoms=st.sampled_from((["rash"], ["flushing", "dyspnea"])),
            treatment=st.sampled_from(([], ["infusion_stopped", "dexamethasone"])),
            outcome=st.sampled_from(("recovered", "recovering", "not_recovered"))),
        "iraes.csv": dict(
            patient_ref=patient,
            onset_date=st.sampled_from(ONSET_DAYS),
            category=st.sampled_from(("hepatitis", "colitis", "thyroiditis")),
            grade=st.integers(1, 5),
            treatment=st.sampled_from(([], ["corticosteroids"])),
            outcome=st.sampled_from(("recovered", "recovering", "not_recovered"))),
    }


def fatal_iff_grade5(row: dict) -> dict:
    if "grade" in row and "outcome" in row:
        if row["grade"] == 5:
            row["outcome"] = "fatal"
        elif row["outcome"] == "fatal":
            row["outcome"] = "recovered"
    return row


def conflicting(file: str, row: dict) -> dict:
    """Same key and recorded_at, other (valid) content."""
    change = {"patients.csv": lambda r: dict(age_at_first_dose=61 if r["age_at_first_dose"] != 61 else 62),
              "infusions.csv": lambda r: dict(dose_mg=r["dose_mg"] + 1),
              "reactions.csv": lambda r: dict(onset_min=r["onset_min"] + 1 if r["onset_min"] < 1440 else 5),
              "iraes.csv": lambda r: dict(treatment=[] if r["treatment"] else ["corticosteroids"]),
              "retractions.csv": lambda r: dict(reason=r["reason"] + " (again)")}[file]
    return dict(row, **change(row))


INVALID = {  # one-row rule breaks, per file
    "patients.csv": (lambda r: dict(age_at_first_dose=17), lambda r: dict(sex="Male"),
                     lambda r: dict(first_dose_date=r["recorded_at"].date() + timedelta(days=1)),
                     lambda r: dict(weight_kg=20.0), lambda r: dict(tumor_type="lung")),
    "infusions.csv": (lambda r: dict(cycle=0), lambda r: dict(dose_mg=0.0),
                      lambda r: dict(started_at=r["recorded_at"] + timedelta(minutes=1)),
                      lambda r: dict(protocol="rapid"), lambda r: dict(combination=["aspirin"]),
                      lambda r: dict(completed="yes"), lambda r: dict(premedication=["Dexamethasone"])),
    "reactions.csv": (lambda r: dict(grade=6), lambda r: dict(grade=5, outcome="recovered"),
                      lambda r: dict(grade=2, outcome="fatal"), lambda r: dict(symptoms=[]),
                      lambda r: dict(onset_min=1441)),
    "iraes.csv": (lambda r: dict(grade=0), lambda r: dict(category="flu"),
                  lambda r: dict(grade=3, outcome="fatal")),
    "retractions.csv": (lambda r: dict(record_type="visit"), lambda r: dict(reason=None),
                        lambda r: dict(reason="x" * 501)),
}


@st.composite
def site_rows(draw, site_id: str, hours: int) -> list[tuple[str, dict]]:
    """(file, row) of one site, before they are dealt into submissions."""
    tz = timezone(timedelta(hours=hours))
    patient_refs = [f"P{i}" for i in range(1, draw(st.integers(1, 3)) + 1)]
    counts = {"patients.csv": len(patient_refs), "infusions.csv": draw(st.integers(0, 7)),
              "reactions.csv": draw(st.integers(0, 6)), "iraes.csv": draw(st.integers(0, 3))}
    infusion_refs = [f"I{i}" for i in range(1, counts["infusions.csv"] + 1)]
    fields = field_strategies(tz, patient_refs, infusion_refs)

    def recorded(version: int) -> datetime:
        """Version v of a record is recorded on days 4v..4v+3 of April (later versions later)."""
        day = date(2025, 4, 1) + timedelta(days=4 * version + draw(st.integers(0, 3)))
        return datetime.combine(day, draw(st.sampled_from(TIMES)), tzinfo=tz)

    rows: list[tuple[str, dict]] = []
    refs = {}
    for file, n in counts.items():
        refs[file] = [f"{PREFIX[file]}{i}" for i in range(1, n + 1)]
        for ref_ in refs[file]:
            row = fatal_iff_grade5({REF_COLUMN[file]: ref_, **{c: draw(s) for c, s in fields[file].items()},
                                    "recorded_at": recorded(0)})
            rows.append((file, row))
            for version in range(1, draw(st.integers(1, 3))):  # corrections
                changed = draw(st.sets(st.sampled_from(sorted(fields[file])), min_size=1, max_size=2))
                row = fatal_iff_grade5(dict(row, **{c: draw(fields[file][c]) for c in sorted(changed)},
                                            recorded_at=recorded(version)))
                rows.append((file, row))
    for _ in range(draw(st.integers(0, 3))):  # retractions, some of records that never arrive
        file = draw(st.sampled_from(FILES[:4]))
        rows.append(("retractions.csv", dict(
            record_type=RECORD_TYPE[file], ref=draw(st.sampled_from(refs[file] + [f"{PREFIX[file]}9"])),
            reason=draw(st.sampled_from(("entered in error", 'wrong patient, see "note 2"'))),
            recorded_at=recorded(draw(st.integers(0, 2))))))
    cohort = draw(st.sampled_from((None, "reacting", "quiet")))
    if cohort:  # 12 cycle-1 cervical infusions, all or none with a reaction: enough to leave the funnel
        at = datetime.combine(date(2025, 4, 1), TIMES[0], tzinfo=tz)
        for i in range(1, 13):
            rows.append(("patients.csv", dict(patient_ref=f"Q{i}", sex="female", age_at_first_dose=60,
                                              tumor_type="cervical", weight_kg=None, first_dose_date=JAN30,
                                              recorded_at=at)))
            rows.append(("infusions.csv", dict(infusion_ref=f"Q{i}", patient_ref=f"Q{i}", cycle=1,
                                               started_at=datetime.combine(FEB1, TIMES[0], tzinfo=tz),
                                               dose_mg=250.0, planned_duration_min=60, protocol="standard",
                                               combination=[], premedication=[], completed=True,
                                               recorded_at=at)))
            if cohort == "reacting":
                rows.append(("reactions.csv", dict(reaction_ref=f"QR{i}", infusion_ref=f"Q{i}", onset_min=10,
                                                   term="infusion_related_reaction", grade=2, symptoms=["rash"],
                                                   treatment=[], outcome="recovered", recorded_at=at)))
    originals = list(rows)
    if originals:
        for _ in range(draw(st.integers(0, 4))):  # re-sent duplicates
            rows.append(draw(st.sampled_from(originals)))
        for _ in range(draw(st.integers(0, 2))):  # conflicts
            file, row = draw(st.sampled_from(originals))
            rows.append((file, conflicting(file, row)))
        for _ in range(draw(st.integers(0, 3))):  # invalid rows
            file, row = draw(st.sampled_from(originals))
            rows.append((file, dict(row, **draw(st.sampled_from(INVALID[file]))(row))))
    return rows


@dataclass
class Scenario:
    submissions: list[ref.Submission]  # in the order they are written and ingested
    split: int                         # submissions[:split] are ingested first

    def __repr__(self) -> str:
        lines = [f"Scenario(split={self.split})"]
        for i, s in enumerate(self.submissions):
            lines.append(f"  {'--- as_of ---' + chr(10) + '  ' if i == self.split else ''}"
                         f"{s.site_id}/{s.submission_id}:")
            for file, rows in s.files.items():
                lines.append(f"    {file}: {', '.join(rows[0])}")
                lines.extend("      " + ", ".join(str(_text(v)) for v in r.values()) for r in rows)
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle) -> None:  # what Hypothesis prints for a failing example
        printer.text(repr(self))


@st.composite
def scenarios(draw) -> Scenario:
    sites = SITES[:draw(st.integers(2, 3))]
    dealt: dict[str, list[dict[str, list[dict]]]] = {}
    for site_id, hours in sites:
        n = draw(st.integers(1, 2))
        subs: list[dict[str, list[dict]]] = [{} for _ in range(n)]
        # a file's rows all in one submission (fewer files to validate: GX costs ~0.4 s a
        # file), or each row in a submission of its own drawing
        whole = {f: draw(st.one_of(st.none(), st.integers(0, n - 1))) for f in FILES}
        for file, row in draw(site_rows(site_id, hours)):
            slot = whole[file] if whole[file] is not None else draw(st.integers(0, n - 1))
            subs[slot].setdefault(file, []).append(row)
        dealt[site_id] = subs
    # interleave the sites' submissions; ids sort in sequence order within each site
    order = draw(st.permutations([s for s, subs in dealt.items() for _ in subs]))
    taken = {s: 0 for s in dealt}
    submissions = []
    for i, site_id in enumerate(order):
        files = dealt[site_id][taken[site_id]]
        taken[site_id] += 1
        submissions.append(ref.Submission(site_id, f"s{i:02d}", datetime(2025, 5, 1, tzinfo=timezone.utc)
                                          + timedelta(hours=i),
                                          {f: files[f] for f in FILES if f in files}))
    return Scenario(submissions, draw(st.integers(1, len(submissions) - 1)))


# ------------------------------------------------------------------ an example always run

def _rows(tz, **defaults):
    """Row makers for hand-written submissions: contract-valid defaults, overridden by name."""
    at = datetime.combine(date(2025, 4, 1), TIMES[0], tzinfo=tz)

    def make(file, **values):
        base = {"patients.csv": dict(sex="female", age_at_first_dose=60, tumor_type="cervical", weight_kg=None,
                                     first_dose_date=JAN31),
                "infusions.csv": dict(cycle=1, dose_mg=250.0, planned_duration_min=60, protocol="standard",
                                      combination=[], premedication=[], completed=True),
                "reactions.csv": dict(onset_min=10, term="infusion_related_reaction", grade=1, symptoms=["rash"],
                                      treatment=[], outcome="recovered"),
                "iraes.csv": dict(category="colitis", grade=2, treatment=[], outcome="recovered"),
                "retractions.csv": dict(reason="entered in error")}[file]
        return fatal_iff_grade5(dict(base, **values, recorded_at=values.get("recorded_at", at)))

    def stamp(day, hh_mm):
        return datetime.combine(day, time(*hh_mm), tzinfo=tz)
    return make, stamp


def edge_cases() -> Scenario:
    """The local-date and tie rules, which random draws reach only now and then.
    SITE-A (+08:00): an infusion at 00:30 on the first-dose day (the UTC date is the day
    before: it counts); two infusions started at the same instant (index by cycle, the
    rechallenge strictly after); an index infusion whose first reaction is grade 2 and
    second grade 4 (band 3+); an infusion at 00:30 on 1 March (UTC: February) and an irAE
    in March. SITE-B (-05:00): a reaction before its infusion, a retraction before its
    record, an infusion at 23:30 on 31 January (UTC: February) and an irAE in January."""
    a, at = _rows(timezone(timedelta(hours=8)))
    b, bt = _rows(timezone(timedelta(hours=-5)))
    exported = datetime(2025, 5, 1, tzinfo=timezone.utc)
    return Scenario([
        ref.Submission("SITE-A", "s00", exported, {
            "patients.csv": [a("patients.csv", patient_ref="P1", first_dose_date=FEB1)],
            "infusions.csv": [a("infusions.csv", infusion_ref="I1", patient_ref="P1", cycle=1, started_at=at(FEB1, (0, 30))),
                              a("infusions.csv", infusion_ref="I2", patient_ref="P1", cycle=2, started_at=at(FEB1, (0, 30)),
                                protocol="extended", premedication=["dexamethasone"]),
                              a("infusions.csv", infusion_ref="I3", patient_ref="P1", cycle=3, started_at=at(MAR1, (0, 30)),
                                protocol="stepwise")],
            "reactions.csv": [a("reactions.csv", reaction_ref="R1", infusion_ref="I1", grade=2),
                              a("reactions.csv", reaction_ref="R2", infusion_ref="I1", grade=4),
                              a("reactions.csv", reaction_ref="R3", infusion_ref="I2", grade=1)],
            "iraes.csv": [a("iraes.csv", irae_ref="E1", patient_ref="P1", onset_date=MAR1)]}),
        ref.Submission("SITE-B", "s01", exported + timedelta(hours=1), {
            "reactions.csv": [b("reactions.csv", reaction_ref="R1", infusion_ref="I1", grade=3)],
            "retractions.csv": [b("retractions.csv", record_type="infusion", ref="I3")]}),
        ref.Submission("SITE-B", "s02", exported + timedelta(hours=2), {
            "patients.csv": [b("patients.csv", patient_ref="P1", first_dose_date=JAN30)],
            "infusions.csv": [b("infusions.csv", infusion_ref="I1", patient_ref="P1", started_at=bt(JAN31, (23, 30))),
                              b("infusions.csv", infusion_ref="I2", patient_ref="P1", cycle=2, started_at=bt(FEB28, (9, 0))),
                              b("infusions.csv", infusion_ref="I3", patient_ref="P1", cycle=3, started_at=bt(MAR1, (9, 0)))],
            "iraes.csv": [b("iraes.csv", irae_ref="E1", patient_ref="P1", onset_date=JAN31)]}),
    ], split=2)


# ------------------------------------------------------------------ writing, reading


def _text(value):
    """A typed value as its CSV cell text (lists, booleans and None are left to the writer)."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return value


def write(home: Home, sub: ref.Submission) -> None:
    write_submission(home.landing, sub.site_id, sub.submission_id, sub.exported_at.isoformat(),
                     {f: [{k: _text(v) for k, v in r.items()} for r in rows] for f, rows in sub.files.items()})


def warehouse_tables(path) -> dict[str, dict[tuple, dict]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for table, grain in ref.GRAINS.items():
            cur = con.execute(f"SELECT * FROM marts.{table}")
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r)) for r in cur.fetchall()]
            out[table] = {tuple(r[c] for c in grain): r for r in rows}
            assert len(out[table]) == len(rows), f"marts.{table}: two rows with the same {grain}"
        return out
    finally:
        con.close()


def same(a, b) -> bool:
    """Equal, floats up to rounding (sums in another order), booleans only to booleans."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def differences(got: dict, want: dict) -> list[str]:
    out = []
    for table, rows in want.items():
        have = got[table]
        for grain in sorted(set(rows) | set(have), key=repr):
            if grain not in have:
                out.append(f"{table} {grain}: missing, reference has {rows[grain]}")
            elif grain not in rows:
                out.append(f"{table} {grain}: not in the reference, warehouse has {have[grain]}")
            else:
                for column, value in rows[grain].items():
                    if not same(have[grain].get(column, "<no such column>"), value):
                        out.append(f"{table} {grain}.{column}: warehouse {have[grain].get(column, '<no such column>')!r}, "
                                   f"reference {value!r}")
    return out


# ------------------------------------------------------------------ the property


@settings(max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "15")), deadline=None,
          derandomize=True, database=None, print_blob=False,  # the same examples on every run
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(scenario=scenarios())
@example(scenario=edge_cases())
def test_marts_equal_the_reference(scenario: Scenario, tmp_path_factory):
    home = Home(tmp_path_factory.mktemp("prop"))
    earlier, later = scenario.submissions[:scenario.split], scenario.submissions[scenario.split:]
    for s in earlier:
        write(home, s)
    reports = ingest_landing(home, **QUIET)
    as_of = datetime.now(timezone.utc)
    for s in later:
        write(home, s)
    again = ingest_landing(home, **QUIET)
    assert sorted((r.site_id, r.submission_id) for r in again if r.status == "skipped") \
        == sorted((s.site_id, s.submission_id) for s in earlier)  # ingested once only
    reports += [r for r in again if r.status != "skipped"]

    # nothing lost: every row an event, a duplicate or quarantined, as the contract sorts them
    expected_counts = ref.take_in(scenario.submissions).counts
    assert sorted((r.site_id, r.submission_id) for r in reports) == sorted(expected_counts)
    for r in reports:
        assert r.status == "accepted", (r.site_id, r.submission_id, r.reason)
        assert r.rows == r.events + r.duplicates + r.quarantined
        assert dict(rows=r.rows, events=r.events, duplicates=r.duplicates, quarantined=r.quarantined) \
            == expected_counts[(r.site_id, r.submission_id)], (r.site_id, r.submission_id)

    build(home, as_of=as_of, out=home.root / "as_of.duckdb", **QUIET)
    build(home, **QUIET)
    for path, subs in ((home.root / "as_of.duckdb", earlier), (home.warehouse, scenario.submissions)):
        got = warehouse_tables(path)
        for row in got["submissions"].values():
            assert row["rows"] == row["events"] + row["duplicates"] + row["quarantined"]
        problems = differences(got, ref.marts(subs))
        assert not problems, f"{path.name}:\n" + "\n".join(problems)
