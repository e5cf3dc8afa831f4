"""The board pack: `safety-ledger report --as-of T --out DIR`.

Writes into DIR, for the events the pipeline had committed at T:

    report.html    self-contained (CSS and every chart inline as SVG, no script, no link out)
    report.pdf     the same document laid out for A4 by WeasyPrint
    figures.json   the figures of the pack, machine-readable, and its reproducibility stamp

The pack builds its own warehouse as of T into a temporary folder with the core build
(`build.build(home, as_of=T, out=...)`): the published warehouse is not touched.

Reproducibility.  The stamp carries T, the number of events the as-of build used and a
fingerprint of them: the SHA-256 over the sorted lines "<batch_id> <table> <sha256>" of
every file of every batch whose ledger row was ingested at or before T -- the files its
ledger row lists with the SHA-256 recorded at commit (checked against the file on disk),
and the ledger file itself.  Nothing in the pack depends on when or where it was made:
no build time, no temporary path, the PDF's creation date is T and its file identifier
is derived from the fingerprint.  So the same command later gives the same bytes, as
long as the code, its libraries and the fonts are the same; a different fingerprint
means different events.

Charts are built here with Altair (no Streamlit: the core never imports it) and turned
into SVG by vl-convert, which runs Vega in-process without a browser.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from .definitions import DEFINITIONS
from .figures import (DASH, as_int, fmt_ci, fmt_int, fmt_pct, fmt_ratio, fmt_time, is_null,
                      label_of, plural, rate_sentence, wilson)
from .manifest import file_sha256
from .home import Home

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
FONT = "DejaVu Sans"  # fonts-dejavu-core: on every machine image of this project's kind
CHART_WIDTH = 560  # px: fits A4 portrait with 15 mm margins
EVENT_TABLES = ("patients", "infusions", "reactions", "iraes", "retractions", "literature")

# DEFINITIONS (safety_ledger/definitions.py) are shared with the dashboard; these are the
# pack's own.
PAGE_DEFINITIONS = {
    "wilson": "95% Wilson score interval (z = 1.959964) for every rate: centre "
              "(p + z²/2n)/(1 + z²/n), half-width z·√(p(1−p)/n + z²/4n²)/(1 + z²/n).",
    "regimen_class": "Regimen class from the infusion's combination: chemotherapy (C), "
                     "bevacizumab (B), tyrosine-kinase inhibitor (T). None → monotherapy; C → "
                     "chemotherapy; C+B → chemo_bevacizumab; T → tki; C+T → chemo_tki; anything "
                     "else → other.",
    "signal": "Signal = binomial MaxSPRT (Kulldorff M, Davis RL, Kolczak M, Lewis E, Lieu T, "
              "Platt R. A maximized sequential probability ratio test for drug and vaccine "
              "safety surveillance. Sequential Analysis 2011;30:58–78), run separately in each "
              "regimen class, tumor type and site against the pooled reaction rate of the "
              "program; a signal when the log-likelihood ratio reaches the critical value for "
              "alpha 0.05, after at least 4 reactions. Alpha is per stratum: with many strata "
              "some signals are expected by chance. A signal is a prompt to look, not a finding.",
    "premedication": "Premedicated = the infusion's premedication list is not empty. Risk ratio = "
                     "reaction rate with premedication / without, within a cycle; over all cycles "
                     "the Mantel–Haenszel risk ratio stratified by cycle, 95% CI from the "
                     "Greenland–Robins variance (Biometrics 1985;41:55–68). Premedication is not "
                     "randomised, so the ratio is not a causal effect.",
    "completeness": "Per site: its latest submission by ingestion time; rows, events, duplicates "
                    "and quarantined rows summed over its accepted submissions; quarantined rows "
                    "by the rule they broke (a row breaking two rules counts under both); data "
                    "issues = records kept in the history but left out of the figures.",
    "fingerprint": "Fingerprint = SHA-256 over the sorted lines “batch id, table, SHA-256 of the "
                   "file” of every committed file of every batch whose ledger row was ingested "
                   "at or before the as-of time (event, quarantine and ledger files).",
}
KINDS = {"regimen_class": "Regimen class", "tumor_type": "Tumor type", "site_id": "Site"}
REGIMEN_ORDER = ["monotherapy", "chemotherapy", "chemo_bevacizumab", "tki", "chemo_tki", "other"]
TIER_COLOURS = {"tolerated": "#2e7d32", "breakthrough": "#f9a825", "failed": "#c62828"}
FUNNEL_COLOURS = {"within funnel": "#1f77b4", "outside funnel": "#c62828", "not assessed": "#999999"}


class ReportError(Exception):
    """A user's mistake (no events by then, a time in the future): one line, exit 2."""


# ---------------------------------------------------------------------------- stamp


@dataclass
class Stamp:
    as_of: datetime
    fingerprint: str
    batches: int
    files: int
    events: int = 0
    events_by_table: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "fingerprint": self.fingerprint,
                "batches": self.batches, "files": self.files, "events": self.events,
                "events_by_table": dict(self.events_by_table)}


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def fingerprint(home: Home, as_of: datetime) -> Stamp:
    """The stamp's fingerprint of every committed file of the batches ingested by `as_of`.

    Each file's SHA-256 is the one its ledger row recorded at commit; the file on disk must
    still have it (else `safety-ledger verify` has something to say, and the pack would not
    be what the ledger claims)."""
    from . import event_store

    as_of = _utc(as_of)
    lines: list[str] = []
    batches = 0
    for ledger, folder in event_store.LEDGERS.items():
        for row in event_store.read_ledger(home, ledger):
            if _utc(row["ingested_at"]) > as_of:
                continue
            batches += 1
            batch = row["batch_id"]
            ledger_file = home.events / folder / f"{batch}.parquet"
            lines.append(f"{batch} {folder} {file_sha256(ledger_file)}")
            for rel, digest in sorted(json.loads(row.get("outputs_json") or "{}").items()):
                path = home.root / rel
                if not path.is_file() or file_sha256(path) != digest:
                    raise ReportError(f"{rel} is missing or has changed since batch {batch} committed "
                                      "it: run `safety-ledger verify`")
                lines.append(f"{batch} {path.parent.name} {digest}")
    lines.sort()
    digest = hashlib.sha256("".join(line + "\n" for line in lines).encode()).hexdigest()
    return Stamp(as_of=as_of, fingerprint=digest, batches=batches, files=len(lines))


# ---------------------------------------------------------------------------- charts


def _svg(chart) -> str:
    import vl_convert as vlc

    # Text is measured by Vega (in vl-convert) and drawn by WeasyPrint or the browser: both
    # must use the same face, else labels overrun their space.
    chart = chart.configure(font=FONT).configure_legend(titleLimit=0, labelLimit=0)
    svg = vlc.vegalite_to_svg(chart.to_dict())
    return svg[svg.index("<svg"):]


def interval_chart(rows: list[dict], *, group_title: str | None, rate_title: str, vertical: bool = False,
                   reference: float | None = None, colour: dict[str, str] | None = None,
                   colour_title: str = "Funnel (99.8%)"):
    """Point estimate and its 95% CI as an error bar per group; rows carry label, rate, lo,
    hi (and colour); each label ends with numerator/denominator."""
    import altair as alt
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["label", "rate", "lo", "hi", "colour"])
    order = list(frame["label"])
    top = min(1.0, max(0.05, float(frame["hi"].max()) if len(frame) else 0.05) * 1.1 + 0.02)
    axis = alt.Axis(format="%", title=rate_title, tickCount=10)
    scale = alt.Scale(domain=[0, top], nice=False, padding=8)
    if vertical:
        base = alt.Chart(frame).encode(x=alt.X("label:N", sort=order, title=group_title,
                                               axis=alt.Axis(labelAngle=0 if len(frame) <= 8 else -45,
                                                             labelLimit=160)))
        bars = base.mark_errorbar(ticks={"size": 12}).encode(y=alt.Y("lo:Q", axis=axis, scale=scale),
                                                            y2="hi:Q")
        point = base.mark_point(filled=True, size=70).encode(y="rate:Q")
        size = {"width": CHART_WIDTH, "height": 240}
    else:
        base = alt.Chart(frame).encode(y=alt.Y("label:N", sort=order, title=group_title,
                                               axis=alt.Axis(labelLimit=220)))
        bars = base.mark_errorbar(ticks={"size": 12}).encode(x=alt.X("lo:Q", axis=axis, scale=scale),
                                                            x2="hi:Q")
        point = base.mark_point(filled=True, size=70).encode(x="rate:Q")
        size = {"width": CHART_WIDTH - 200, "height": alt.Step(26 if len(frame) <= 30 else 12)}
    if colour:
        enc = alt.Color("colour:N", title=colour_title,
                        scale=alt.Scale(domain=list(colour), range=list(colour.values())))
        bars, point = bars.encode(color=enc), point.encode(color=enc)
    else:
        bars, point = bars.encode(color=alt.value("#1f4e79")), point.encode(color=alt.value("#1f4e79"))
    layers = [bars, point]
    if reference is not None:
        ref = alt.Chart(pd.DataFrame({"ref": [reference]})).mark_rule(strokeDash=[4, 4], color="#888")
        layers.insert(0, ref.encode(y="ref:Q") if vertical else ref.encode(x="ref:Q"))
    return alt.layer(*layers).properties(**size)


def stacked_bars(rows: list[dict], *, x: str, x_title: str | None, y_title: str, colour_title: str,
                 order: list[str], colours: dict[str, str] | None = None, horizontal: bool = False):
    """rows: {x, colour, value}."""
    import altair as alt
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["x", "colour", "value", "rank"])
    scale = (alt.Scale(domain=list(colours), range=list(colours.values())) if colours
             else alt.Scale(scheme="tableau20"))
    colour = alt.Color("colour:N", title=colour_title, scale=scale)
    if horizontal:
        enc = {"y": alt.Y("x:N", title=x_title, sort=order, axis=alt.Axis(labelLimit=260)),
               "x": alt.X("sum(value):Q", title=y_title, axis=alt.Axis(tickMinStep=1))}
        size = {"width": CHART_WIDTH - 260, "height": alt.Step(24)}
    else:
        enc = {"x": alt.X("x:N", title=x_title, sort=order,
                          axis=alt.Axis(labelAngle=0 if len(order) <= 8 else -45)),
               "y": alt.Y("sum(value):Q", title=y_title, axis=alt.Axis(tickMinStep=1))}
        size = {"width": CHART_WIDTH - 120, "height": 220}
    return (alt.Chart(frame).mark_bar()
            .encode(color=colour, order=alt.Order("rank:Q"), **enc).properties(**size))


# ---------------------------------------------------------------------------- the pack


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Section:
    id: str
    title: str
    definitions: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)       # sentences with their denominators
    charts: list[tuple[str, str]] = field(default_factory=list)  # (caption, svg)
    tables: list[tuple[str, Table]] = field(default_factory=list)  # (heading, table)


@dataclass
class Pack:
    out: Path
    html: Path
    pdf: Path
    figures: Path
    stamp: Stamp


class _Reader:
    def __init__(self, con):
        self.con = con
        self.marts = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'").fetchall()}

    def rows(self, sql: str, params: list | None = None) -> list[dict]:
        cur = self.con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def columns(self, table: str) -> list[str]:
        return [r[0] for r in self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'marts' "
            "AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()]


def _rate_rows(rows: list[dict], key: str, k: str, rate: str, lo: str, hi: str) -> list[dict]:
    out = []
    for r in rows:
        if is_null(r[rate]) or as_int(r["infusions"]) <= 0:
            continue
        out.append({"label": f"{label_of(r[key])} ({as_int(r[k])}/{as_int(r['infusions'])})",
                    "rate": float(r[rate]), "lo": float(r[lo]) if not is_null(r[lo]) else float(r[rate]),
                    "hi": float(r[hi]) if not is_null(r[hi]) else float(r[rate]), "colour": ""})
    return out


def _rate_table(rows: list[dict], key: str, key_title: str) -> Table:
    cols = [key_title, "Infusions", "With reaction", "Reaction rate", "95% CI", "Grade 3+",
            "Grade 3+ rate", "Grade 3+ 95% CI", "Patients"]
    body = [[label_of(r[key]), fmt_int(r["infusions"]), fmt_int(r["reaction_infusions"]),
             fmt_pct(r["reaction_rate"]), fmt_ci(r["ci_low"], r["ci_high"]),
             fmt_int(r["grade3plus_infusions"]), fmt_pct(r["grade3plus_rate"]),
             fmt_ci(r["grade3plus_ci_low"], r["grade3plus_ci_high"]), fmt_int(r["patients"])]
            for r in rows]
    return Table(cols, body)


def _overview(db: _Reader, figures: dict) -> Section:
    s = Section("overview", "Overview", [DEFINITIONS["current"]])
    sites = db.rows("SELECT * FROM marts.reaction_rate_by_site ORDER BY site_id")
    inf = sum(as_int(r["infusions"]) for r in sites)
    rx = sum(as_int(r["reaction_infusions"]) for r in sites)
    g3 = sum(as_int(r["grade3plus_infusions"]) for r in sites)
    pts = sum(as_int(r["patients"]) for r in sites)
    rech = db.rows("SELECT * FROM marts.rechallenge_outcomes")
    indexed = sum(as_int(r["patients_with_index_reaction"]) for r in rech)
    rechallenged = sum(as_int(r["rechallenged"]) for r in rech)
    success = sum(as_int(r["tolerated"]) + as_int(r["breakthrough"]) for r in rech)
    subs = db.rows("SELECT * FROM marts.submissions")
    acc = sum(r["status"] == "accepted" for r in subs)
    issues = db.rows("SELECT site_id FROM marts.data_issues")
    quarantined = sum(as_int(r["quarantined"]) for r in subs)
    s.lines = [
        rate_sentence("Reaction rate", rx, inf, "infusions"),
        rate_sentence("Grade 3+ rate", g3, inf, "infusions"),
        f"{plural(pts, 'patient')} with ≥1 current infusion, who received {plural(inf, 'infusion')}.",
        rate_sentence("Rechallenge success", success, rechallenged, "rechallenged patients")
        + f"; {plural(indexed, 'patient')} with an index reaction, {indexed - rechallenged:,} not rechallenged.",
        f"{plural(sum(as_int(r['infusions']) > 0 for r in sites), 'site')} with current infusions; "
        f"{acc:,} accepted and {len(subs) - acc:,} rejected of {plural(len(subs), 'submission')}; "
        f"{quarantined:,} quarantined rows; {plural(len(issues), 'record')} with a data issue "
        "left out of the figures.",
    ]
    figures["overview"] = {"infusions": inf, "reaction_infusions": rx, "grade3plus_infusions": g3,
                           "patients": pts, "patients_with_index_reaction": indexed,
                           "rechallenged": rechallenged, "rechallenge_successes": success,
                           "submissions": len(subs), "accepted": acc, "quarantined": quarantined,
                           "data_issues": len(issues)}
    return s


def _signal_table(rows: list[dict]) -> Table:
    return Table(["Status", "First signalled", "Stratum type", "Stratum", "Infusions", "Observed",
                  "Expected", "LLR", "Threshold", "At signal: observed / expected"],
                 [[str(r["status"]), fmt_time(r["first_signalled_at"]),
                   KINDS.get(str(r["stratum_type"]), str(r["stratum_type"])), label_of(r["stratum"]),
                   fmt_int(r["infusions"]), fmt_int(r["observed"]), fmt_ratio(r["expected"], 1),
                   fmt_ratio(r["statistic"], 3), fmt_ratio(r["threshold"], 3),
                   DASH if r.get("observed_at_signal") is None
                   else f"{fmt_int(r['observed_at_signal'])} / {fmt_ratio(r['expected_at_signal'], 1)}"]
                  for r in rows])


SIGNAL_ORDER = ("ORDER BY (status = 'signal') DESC, first_signalled_at DESC NULLS LAST, "
                "stratum_type, stratum")


def _open_signals(db: _Reader, figures: dict) -> Section:
    s = Section("open-signals", "Open signals", [PAGE_DEFINITIONS["signal"]])
    rows = db.rows(f"SELECT * FROM marts.signals WHERE status = 'signal' {SIGNAL_ORDER}")
    total = db.rows("SELECT count(*) AS n FROM marts.signals")[0]["n"]
    if rows:
        s.lines.append(f"{plural(len(rows), 'open signal')} in "
                       f"{plural(total, 'monitored stratum', 'monitored strata')}, newest first.")
        s.tables.append(("", _signal_table(rows)))
    else:
        s.lines.append(f"No open signal in {plural(total, 'monitored stratum', 'monitored strata')}.")
    figures["open_signals"] = [[r["stratum_type"], r["stratum"], fmt_time(r["first_signalled_at"])]
                               for r in rows]
    return s


def _rates(db: _Reader, figures: dict) -> Section:
    s = Section("reaction-rates", "Reaction rates",
                [DEFINITIONS["reaction_rate"], DEFINITIONS["grade3plus_rate"], PAGE_DEFINITIONS["wilson"],
                 "Each point is the rate, the bar its 95% interval; each group is labelled with its "
                 "numerator/denominator (infusions); the dashed line is the rate over all infusions. "
                 "Groups with 0 infusions have no rate and are not drawn."])
    specs = [("reaction_rate_by_cycle", "cycle", "Cycle", "cycles", True, "cycle"),
             ("reaction_rate_by_tumor_type", "tumor_type", "Tumor type", "tumor types", False,
              "infusions DESC, tumor_type"),
             ("reaction_rate_by_regimen", "regimen_class", "Regimen class", "regimen classes", False,
              "array_position(" + str(REGIMEN_ORDER).replace('"', "'") + ", regimen_class) NULLS LAST, regimen_class"),
             ("reaction_rate_by_site", "site_id", "Site", "sites", False, "site_id")]
    figures["rates"] = {}
    for table, key, title, many, vertical, order in specs:
        rows = db.rows(f"SELECT * FROM marts.{table} ORDER BY {order}")
        inf = sum(as_int(r["infusions"]) for r in rows)
        rx = sum(as_int(r["reaction_infusions"]) for r in rows)
        g3 = sum(as_int(r["grade3plus_infusions"]) for r in rows)
        s.lines.append(f"By {title.lower()}: " + rate_sentence("reaction rate", rx, inf, "infusions")
                       + "; " + rate_sentence("grade 3+ rate", g3, inf, "infusions") + ".")
        for what, k, rate, lo, hi, total in (
                ("Reaction rate", "reaction_infusions", "reaction_rate", "ci_low", "ci_high", rx),
                ("Grade 3+ rate", "grade3plus_infusions", "grade3plus_rate", "grade3plus_ci_low",
                 "grade3plus_ci_high", g3)):
            points = _rate_rows(rows, key, k, rate, lo, hi)
            if table == "reaction_rate_by_site" and what == "Reaction rate":
                continue  # drawn with the funnel colours in the sites section
            if points:
                s.charts.append((f"{what} by {title.lower()}, 95% Wilson intervals",
                                 _svg(interval_chart(points, group_title=title, rate_title=what,
                                                     vertical=vertical, reference=wilson(total, inf)[0]))))
        s.tables.append((f"By {title.lower()}", _rate_table(rows, key, title)))
        figures["rates"][table] = [[label_of(r[key]), as_int(r["infusions"]), as_int(r["reaction_infusions"]),
                                    fmt_ci(r["ci_low"], r["ci_high"]), as_int(r["grade3plus_infusions"]),
                                    fmt_ci(r["grade3plus_ci_low"], r["grade3plus_ci_high"]),
                                    as_int(r["patients"])] for r in rows]
    s.definitions.append(PAGE_DEFINITIONS["regimen_class"])
    return s


def _sites(db: _Reader, figures: dict) -> Section:
    s = Section("sites", "Site comparison", [DEFINITIONS["reaction_rate"], DEFINITIONS["observed_expected"]])
    rows = db.rows("SELECT * FROM marts.reaction_rate_by_site ORDER BY site_id")
    flag = {r["site_id"]: ("not assessed" if is_null(r["outside_funnel"]) else
                           "outside funnel" if r["outside_funnel"] else "within funnel") for r in rows}
    inf = sum(as_int(r["infusions"]) for r in rows)
    rx = sum(as_int(r["reaction_infusions"]) for r in rows)
    outside = [r["site_id"] for r in rows if flag[r["site_id"]] == "outside funnel"]
    s.lines.append(rate_sentence("All sites: reaction rate", rx, inf, "infusions")
                   + f"; {len(outside)} of {plural(len(rows), 'site')} outside the 99.8% funnel"
                   + (f" ({', '.join(outside)})" if outside else "") + ".")
    points = _rate_rows(rows, "site_id", "reaction_infusions", "reaction_rate", "ci_low", "ci_high")
    for p, r in zip(points, [r for r in rows if not is_null(r["reaction_rate"]) and as_int(r["infusions"]) > 0]):
        p["colour"] = flag[r["site_id"]]
    if points:
        s.charts.append(("Reaction rate by site, 95% Wilson intervals; dashed line: the pooled rate; "
                         "colour: outside the 99.8% funnel (case-mix adjusted) or not",
                         _svg(interval_chart(points, group_title="Site", rate_title="Reaction rate",
                                             reference=wilson(rx, inf)[0], colour=FUNNEL_COLOURS))))
    fun = [r for r in rows if not is_null(r["expected_reaction_infusions"])]
    if fun:
        import altair as alt
        import pandas as pd

        frame = pd.DataFrame({"site": [r["site_id"] for r in fun],
                              "low": [as_int(r["funnel_low"]) for r in fun],
                              "high": [as_int(r["funnel_high"]) for r in fun],
                              "expected": [float(r["expected_reaction_infusions"]) for r in fun],
                              "observed": [as_int(r["reaction_infusions"]) for r in fun],
                              "funnel": [flag[r["site_id"]] for r in fun]})
        top = max(1.0, float(frame[["low", "high", "expected", "observed"]].max().max()))
        base = alt.Chart(frame).encode(y=alt.Y("site:N", sort=list(frame["site"]), title="Site"))
        limits = base.mark_errorbar(ticks=True, color="#999").encode(
            x=alt.X("low:Q", title="Infusions with a reaction", scale=alt.Scale(domain=[0, top * 1.05]),
                    axis=alt.Axis(tickMinStep=1)), x2="high:Q")
        expected = base.mark_tick(color="#333", thickness=2).encode(x="expected:Q")
        observed = base.mark_point(filled=True, size=70).encode(
            x="observed:Q", color=alt.Color("funnel:N", title="Funnel (99.8%)",
                                            scale=alt.Scale(domain=list(FUNNEL_COLOURS),
                                                            range=list(FUNNEL_COLOURS.values()))))
        s.charts.append(("Observed infusions with a reaction against the 99.8% limits around the "
                         "expected count (grey bar: limits; black tick: expected; dot: observed)",
                         _svg(alt.layer(limits, expected, observed)
                              .properties(width=CHART_WIDTH - 200, height=alt.Step(26)))))
    s.tables.append(("", Table(
        ["Site", "Infusions", "With reaction", "Reaction rate", "95% CI", "Expected", "Obs/exp",
         "99.8% limits", "Funnel"],
        [[r["site_id"], fmt_int(r["infusions"]), fmt_int(r["reaction_infusions"]),
          fmt_pct(r["reaction_rate"]), fmt_ci(r["ci_low"], r["ci_high"]),
          fmt_ratio(r["expected_reaction_infusions"], 1), fmt_ratio(r["observed_to_expected"]),
          DASH if is_null(r["funnel_low"]) else f"{as_int(r['funnel_low'])}–{as_int(r['funnel_high'])}",
          flag[r["site_id"]]] for r in rows])))
    figures["sites"] = [[r["site_id"], as_int(r["infusions"]), as_int(r["reaction_infusions"]),
                         fmt_ratio(r["expected_reaction_infusions"], 3), flag[r["site_id"]]] for r in rows]
    return s


def _rechallenge(db: _Reader, figures: dict) -> Section:
    s = Section("rechallenge", "Rechallenge",
                [DEFINITIONS["rechallenge_success"], DEFINITIONS["rechallenge_tiers"],
                 "Protocol and premedication are those of the rechallenge infusion; a patient with "
                 "an index reaction and no later infusion is in a “not rechallenged” row."])
    rows = db.rows("SELECT * FROM marts.rechallenge_outcomes ORDER BY protocol IS NULL, protocol, "
                   "premedicated DESC NULLS LAST, index_grade_band")
    indexed = sum(as_int(r["patients_with_index_reaction"]) for r in rows)
    rech = sum(as_int(r["rechallenged"]) for r in rows)
    succ = sum(as_int(r["tolerated"]) + as_int(r["breakthrough"]) for r in rows)
    s.lines.append(rate_sentence("Rechallenge success", succ, rech, "rechallenged patients")
                   + f"; {plural(indexed, 'patient')} with an index reaction, "
                     f"{indexed - rech:,} not rechallenged.")

    def group(r: dict) -> str:
        if is_null(r["protocol"]):
            return f"not rechallenged · grade {label_of(r['index_grade_band'])}"
        premed = "premed." if r["premedicated"] else "no premed."
        return f"{r['protocol']} · {premed} · grade {label_of(r['index_grade_band'])}"

    done = [r for r in rows if as_int(r["rechallenged"]) > 0]
    if done:
        tiers = [{"x": group(r), "colour": t, "value": as_int(r[t]), "rank": i}
                 for r in done for i, t in enumerate(TIER_COLOURS)]
        s.charts.append(("Outcome tiers of rechallenged patients by protocol × premedication × index "
                         "grade band", _svg(stacked_bars(tiers, x="x", x_title=None,
                                                         y_title="Rechallenged patients", colour_title="Outcome",
                                                         order=[group(r) for r in done], colours=TIER_COLOURS,
                                                         horizontal=True))))
        points = []
        for r in done:
            k, n = as_int(r["tolerated"]) + as_int(r["breakthrough"]), as_int(r["rechallenged"])
            rate, lo, hi = wilson(k, n)
            points.append({"label": f"{group(r)} ({k}/{n})", "rate": rate, "lo": lo, "hi": hi, "colour": ""})
        s.charts.append(("Rechallenge success rate, 95% Wilson intervals (successes/rechallenged)",
                         _svg(interval_chart(points, group_title=None,
                                             rate_title="Rechallenge success"))))
    body = []
    for r in rows:
        k, n = as_int(r["tolerated"]) + as_int(r["breakthrough"]), as_int(r["rechallenged"])
        rate, lo, hi = wilson(k, n)
        body.append([group(r), fmt_int(r["patients_with_index_reaction"]), fmt_int(n), f"{k:,} of {n:,}",
                     fmt_pct(rate), fmt_ci(lo, hi), fmt_int(r["tolerated"]), fmt_int(r["breakthrough"]),
                     fmt_int(r["failed"])])
    s.tables.append(("", Table(["Group", "Index reactions", "Rechallenged", "Success", "Rate", "95% CI",
                                "Tolerated", "Breakthrough", "Failed"], body)))
    figures["rechallenge"] = {"patients_with_index_reaction": indexed, "rechallenged": rech,
                              "successes": succ, "rows": [[group(r)] + [as_int(r[c]) for c in (
                                  "patients_with_index_reaction", "rechallenged", "tolerated",
                                  "breakthrough", "failed")] for r in rows]}
    if "rechallenge_by_protocol" in db.marts:
        _rechallenge_by_protocol(db, s, figures)
    return s


PAPER = "Seed case series, Table 4"


def _rechallenge_by_protocol(db: _Reader, s: Section, figures: dict) -> None:
    """Success by protocol of the rechallenge infusion (marts.rechallenge_by_protocol): this
    warehouse's rows, then the seed's Table 4 as published, labelled as the paper's."""
    rows = db.rows("SELECT * FROM marts.rechallenge_by_protocol "
                   "ORDER BY source = 'warehouse' DESC, protocol_order, protocol")
    s.definitions += [DEFINITIONS["rechallenge_protocol"], DEFINITIONS["rechallenge_reference"]]

    def who(r: dict) -> str:
        return "this warehouse" if r["source"] == "warehouse" else "paper, Table 4"

    points = []
    for r in rows:
        k, n = as_int(r["successes"]), as_int(r["rechallenged"])
        if n > 0:
            rate, lo, hi = wilson(k, n)
            points.append({"label": f"{label_of(r['protocol'])} · {who(r)} ({k}/{n})", "rate": rate,
                           "lo": lo, "hi": hi,
                           "colour": "this warehouse" if r["source"] == "warehouse" else "paper (Table 4)"})
    if points:
        s.charts.append((
            "Rechallenge success by protocol of the rechallenge infusion, 95% Wilson intervals "
            "(successes/rechallenged); protocols with no rechallenged patient are not drawn. "
            "Rows marked “paper” are the seed case series' Table 4 as published, not this warehouse's.",
            _svg(interval_chart(points, group_title=None, rate_title="Rechallenge success",
                                colour={"this warehouse": "#1f4e79", "paper (Table 4)": "#999999"},
                                colour_title="Source"))))
    body = []
    for r in rows:
        k, n = as_int(r["successes"]), as_int(r["rechallenged"])
        rate, lo, hi = wilson(k, n)
        body.append([label_of(r["protocol"]), "This warehouse" if r["source"] == "warehouse"
                     else f"{r['source']} (published)" + (f": {r['reference_cases']}"
                                                          if not is_null(r["reference_cases"]) else ""),
                     fmt_int(n), f"{k:,} of {n:,}", fmt_pct(rate), fmt_ci(lo, hi),
                     fmt_int(r["tolerated"]), fmt_int(r["breakthrough"]), fmt_int(r["failed"]),
                     fmt_int(r["premedicated"])])
    s.tables.append(("Success by protocol", Table(
        ["Protocol", "Source", "Rechallenged", "Success", "Rate", "95% CI", "Tolerated",
         "Breakthrough", "Failed", "Premedicated"], body)))
    paper = [r for r in rows if r["source"] != "warehouse"]
    if paper and not is_null(paper[0]["citation"]):
        s.lines.append(f"Reference rows ({PAPER}): {paper[0]['citation']}.")
    figures["rechallenge_by_protocol"] = [
        [r["source"], r["protocol"]] + [as_int(r[c]) for c in (
            "rechallenged", "tolerated", "breakthrough", "failed", "successes", "premedicated")]
        for r in rows]


def _irae(db: _Reader, figures: dict) -> Section:
    import altair as alt
    import pandas as pd

    s = Section("irae", "irAE trends", [DEFINITIONS["irae"], DEFINITIONS["current"]])
    rows = db.rows("SELECT strftime(month, '%Y-%m') AS m, category, events, grade3plus_events, patients, "
                   "treated_patients FROM marts.irae_monthly ORDER BY m, category")
    figures["irae_monthly"] = [[r["m"], label_of(r["category"]), as_int(r["events"]),
                                as_int(r["grade3plus_events"]), as_int(r["patients"]),
                                as_int(r["treated_patients"])] for r in rows]
    if not rows:
        s.lines.append("No current irAE in this build.")
        return s
    months = sorted({r["m"] for r in rows})
    n_ev = sum(as_int(r["events"]) for r in rows)
    n_g3 = sum(as_int(r["grade3plus_events"]) for r in rows)
    s.lines.append(f"{plural(n_ev, 'irAE event')} ({n_g3:,} grade 3+) with onset in "
                   f"{plural(len(months), 'month')} ({months[0]} to {months[-1]}).")
    cats = sorted({label_of(r["category"]) for r in rows})
    ev = [{"x": r["m"], "colour": label_of(r["category"]), "value": as_int(r["events"]), "rank": cats.index(label_of(r["category"]))}
          for r in rows]
    s.charts.append(("irAE events by month of onset and category",
                     _svg(stacked_bars(ev, x="x", x_title="Month of onset", y_title="irAE events",
                                       colour_title="Category", order=months))))
    g3 = [dict(e, value=as_int(r["grade3plus_events"])) for e, r in zip(ev, rows) if as_int(r["grade3plus_events"])]
    if g3:
        s.charts.append(("Grade 3+ irAE events by month of onset and category",
                         _svg(stacked_bars(g3, x="x", x_title="Month of onset", y_title="Grade 3+ irAE events",
                                           colour_title="Category", order=months))))
    treated = {r["m"]: as_int(r["treated_patients"]) for r in rows}
    tp = pd.DataFrame({"Month": months, "Treated patients": [treated[m] for m in months]})
    s.charts.append(("Treated patients by month (distinct patients with an infusion started in the month)",
                     _svg(alt.Chart(tp).mark_line(point=True).encode(
                         x=alt.X("Month:N", sort=months, axis=alt.Axis(labelAngle=0 if len(months) <= 8 else -45)),
                         y=alt.Y("Treated patients:Q")).properties(width=CHART_WIDTH - 120, height=180))))
    by_month = []
    for m in months:
        mr = [r for r in rows if r["m"] == m]
        by_month.append([m, fmt_int(sum(as_int(r["events"]) for r in mr)),
                         fmt_int(sum(as_int(r["grade3plus_events"]) for r in mr)), fmt_int(treated[m])])
    s.tables.append(("By month", Table(["Month", "irAE events", "Grade 3+ events", "Treated patients"], by_month)))
    s.tables.append(("By month and category", Table(
        ["Month", "Category", "Events", "Grade 3+", "Patients", "Treated patients"],
        [[r["m"], label_of(r["category"]), fmt_int(r["events"]), fmt_int(r["grade3plus_events"]),
          fmt_int(r["patients"]), fmt_int(r["treated_patients"])] for r in rows])))
    return s


def _signals(db: _Reader, figures: dict) -> Section:
    s = Section("signals", "Signals and premedication", [PAGE_DEFINITIONS["signal"]])
    rows = db.rows(f"SELECT * FROM marts.signals {SIGNAL_ORDER}")
    if rows:
        first = rows[0]
        line = f"Baseline (H0): pooled reaction rate {fmt_pct(first['baseline'])}"
        if not is_null(first["threshold"]):
            line += f"; critical value {float(first['threshold']):.3f} for alpha 0.05"
        s.lines.append(line + f"; {plural(sum(r['status'] == 'signal' for r in rows), 'open signal')} of "
                       f"{plural(len(rows), 'stratum', 'strata')} monitored (signals first, newest first).")
        s.tables.append(("Sequential signal detection (binomial MaxSPRT)", _signal_table(rows)))
    else:
        s.lines.append("No stratum monitored: no current infusions.")
    figures["signals"] = [[r["stratum_type"], r["stratum"], r["status"], as_int(r["observed"]),
                           fmt_ratio(r["statistic"], 6), fmt_time(r["first_signalled_at"])] for r in rows]

    s.definitions.append(PAGE_DEFINITIONS["premedication"])
    pe = db.rows("SELECT * FROM marts.premedication_effect ORDER BY cycle NULLS LAST")
    pooled = [r for r in pe if is_null(r["cycle"])]
    if pooled:
        mh = pooled[0]
        if is_null(mh["risk_ratio"]):
            s.lines.append("Mantel–Haenszel risk ratio, premedicated vs not: — (no cycle has reactions "
                           "to compare in both groups).")
        else:
            s.lines.append(f"Mantel–Haenszel risk ratio, premedicated vs not, stratified by cycle: "
                           f"{fmt_ratio(mh['risk_ratio'])} (95% CI {fmt_ratio(mh['rr_ci_low'])}–"
                           f"{fmt_ratio(mh['rr_ci_high'])}) over {plural(mh['informative_strata'], 'cycle')} "
                           f"with both groups; crude {fmt_ratio(mh['crude_risk_ratio'])}.")
        s.lines.append(rate_sentence("With premedication: reaction rate", mh["premedicated_reaction_infusions"],
                                     mh["premedicated_infusions"], "infusions") + "; "
                       + rate_sentence("without: reaction rate", mh["not_premedicated_reaction_infusions"],
                                       mh["not_premedicated_infusions"], "infusions") + ".")
    points = []
    for r in pe:
        if is_null(r["cycle"]):
            continue
        for arm, k, n in (("premedicated", "premedicated_reaction_infusions", "premedicated_infusions"),
                          ("not premedicated", "not_premedicated_reaction_infusions", "not_premedicated_infusions")):
            rate, lo, hi = wilson(r[k], r[n])
            if rate is not None:
                points.append({"label": f"cycle {label_of(r['cycle'])} {arm} ({as_int(r[k])}/{as_int(r[n])})",
                               "rate": rate, "lo": lo, "hi": hi, "colour": arm})
    if points:
        s.charts.append(("Reaction rate with and without premedication by cycle, 95% Wilson intervals",
                         _svg(interval_chart(points, group_title=None, rate_title="Reaction rate",
                                             colour={"premedicated": "#6a3d9a", "not premedicated": "#ff7f00"},
                                             colour_title="Premedication"))))
    s.tables.append(("Premedication by cycle", Table(
        ["Cycle", "Premedicated", "Rate with", "95% CI with", "Not premedicated", "Rate without",
         "95% CI without", "Risk ratio", "RR 95% CI"],
        [[label_of(r["cycle"], "all cycles"),
          f"{as_int(r['premedicated_reaction_infusions']):,} of {as_int(r['premedicated_infusions']):,}",
          fmt_pct(r["premedicated_rate"]), fmt_ci(r["premedicated_ci_low"], r["premedicated_ci_high"]),
          f"{as_int(r['not_premedicated_reaction_infusions']):,} of {as_int(r['not_premedicated_infusions']):,}",
          fmt_pct(r["not_premedicated_rate"]), fmt_ci(r["not_premedicated_ci_low"], r["not_premedicated_ci_high"]),
          fmt_ratio(r["risk_ratio"]),
          DASH if is_null(r["rr_ci_low"]) else f"{float(r['rr_ci_low']):.2f}–{float(r['rr_ci_high']):.2f}"]
         for r in pe])))
    figures["premedication"] = [[label_of(r["cycle"], "all cycles"), as_int(r["premedicated_infusions"]),
                                 as_int(r["premedicated_reaction_infusions"]), as_int(r["not_premedicated_infusions"]),
                                 as_int(r["not_premedicated_reaction_infusions"]), fmt_ratio(r["risk_ratio"], 6)]
                                for r in pe]
    return s


def _onset(db: _Reader, figures: dict) -> Section | None:
    """Onset and severity, from the marts that carry it (drawn only when the build has them)."""
    import altair as alt
    import pandas as pd

    names = ("reaction_onset", "grade_distribution", "irae_incidence_by_category", "irae_cumulative_incidence")
    if not any(n in db.marts for n in names):
        return None
    s = Section("onset", "Onset and severity",
                ["Minutes from infusion start to reaction onset by term and grade; grade distributions "
                 "with 95% Wilson intervals; days from first dose to each irAE category as a "
                 "Kaplan–Meier cumulative incidence (1 − S), censored at the patient's last infusion."])
    figures["onset"] = {}
    cols = {n: set(db.columns(n)) for n in names if n in db.marts}
    box = {"term", "grade", "min_onset_min", "q1_onset_min", "median_onset_min", "q3_onset_min", "max_onset_min"}
    if box <= cols.get("reaction_onset", set()):
        rows = db.rows("SELECT * FROM marts.reaction_onset WHERE grade IS NOT NULL AND term <> 'all' "
                       "ORDER BY term, grade")
        if rows:
            frame = pd.DataFrame([{"group": f"{r['term']} · grade {r['grade']} (n={as_int(r.get('reactions'))})",
                                   **{c: r[c] for c in box - {"term", "grade"}}} for r in rows])
            order = list(frame["group"])
            base = alt.Chart(frame).encode(y=alt.Y("group:N", sort=order, title=None,
                                                   axis=alt.Axis(labelLimit=260)))
            chart = alt.layer(
                base.mark_rule(color="#777").encode(x=alt.X("min_onset_min:Q", title="Minutes from infusion start to onset"),
                                                    x2="max_onset_min:Q"),
                base.mark_bar(size=12, color="#9ecae1").encode(x="q1_onset_min:Q", x2="q3_onset_min:Q"),
                base.mark_tick(color="#08306b", thickness=2, size=14).encode(x="median_onset_min:Q"),
            ).properties(width=CHART_WIDTH - 280, height=alt.Step(24))
            s.charts.append(("Onset minutes by term and grade: line min–max, box quartiles, tick median", _svg(chart)))
    if {"event_type", "kind", "grade", "events"} <= cols.get("grade_distribution", set()):
        rows = db.rows("SELECT * FROM marts.grade_distribution WHERE kind <> 'all' AND events > 0 "
                       "ORDER BY event_type, kind, grade")
        if rows:
            bars = [{"x": f"{r['event_type']}: {r['kind']}", "colour": f"grade {r['grade']}",
                     "value": as_int(r["events"]), "rank": as_int(r["grade"])} for r in rows]
            order = sorted({b["x"] for b in bars})
            s.charts.append(("Grade distribution of reactions by term and of irAEs by category (events)",
                             _svg(stacked_bars(bars, x="x", x_title=None, y_title="Events",
                                               colour_title="CTCAE grade", order=order, horizontal=True,
                                               colours={f"grade {g}": c for g, c in zip(
                                                   range(1, 6), ["#fee391", "#fec44f", "#fe9929", "#d95f0e", "#993404"])}))))
    if {"category", "day", "cumulative_incidence"} <= cols.get("irae_cumulative_incidence", set()):
        rows = db.rows("SELECT category, day, cumulative_incidence FROM marts.irae_cumulative_incidence "
                       "ORDER BY category, day")
        figures["onset"]["irae_cumulative_incidence_points"] = len(rows)
        if rows:
            s.charts.append(("Cumulative incidence of each irAE category by days from first dose "
                             "(Kaplan–Meier, 1 − S)",
                             _svg(alt.Chart(pd.DataFrame(rows)).mark_line(interpolate="step-after").encode(
                                 x=alt.X("day:Q", title="Days from first dose"),
                                 y=alt.Y("cumulative_incidence:Q", title="Cumulative incidence",
                                         axis=alt.Axis(format="%")),
                                 color=alt.Color("category:N", title="Category",
                                                 scale=alt.Scale(scheme="tableau20")))
                                  .properties(width=CHART_WIDTH - 160, height=240))))
    for n, keep in (("reaction_onset", None),
                    ("grade_distribution", "kind <> 'all' AND events > 0"),
                    ("irae_incidence_by_category", None)):
        if n not in cols:
            continue
        names_ = db.columns(n)
        order = ", ".join(f'"{c}"' for c in names_)
        rows = db.rows(f'SELECT * FROM marts."{n}"' + (f" WHERE {keep}" if keep else "") + f" ORDER BY {order}")
        body = [[_cell(r[c]) for c in names_] for r in rows]
        figures["onset"][n] = body
        s.tables.append((n.replace("_", " ").capitalize() + (" (rows with events)" if keep else ""),
                         Table([c.replace("_", " ") for c in names_], body)))
    return s


def _cell(x: Any) -> str:
    if is_null(x):
        return DASH
    if isinstance(x, float):
        return f"{x:.4g}"
    if isinstance(x, (list, tuple)):
        return ", ".join(str(v) for v in x)
    if isinstance(x, datetime):
        return fmt_time(x)
    return str(x)


def _literature(db: _Reader, figures: dict) -> Section:
    s = Section("literature", "Literature",
                ["Publications on cadonilimab from the literature drops, with the finding that bears on "
                 "safety; first ingested = when the pipeline first saw the publication."])
    rows = db.rows("SELECT * FROM marts.literature ORDER BY first_ingested_at DESC, publication_id")
    types: dict[str, int] = {}
    for r in rows:
        types[label_of(r["study_type"])] = types.get(label_of(r["study_type"]), 0) + 1
    s.lines.append(f"{plural(len(rows), 'publication')}"
                   + (": " + ", ".join(f"{t} {n}" for t, n in sorted(types.items())) if rows else "") + ".")
    s.tables.append(("", Table(["ID", "Title", "Indication", "Study type", "Key finding", "First ingested"],
                               [[str(r["publication_id"]), str(r["title"]), label_of(r["indication"]),
                                 label_of(r["study_type"]), str(r["key_finding"]), fmt_time(r["first_ingested_at"])]
                                for r in rows])))
    figures["literature"] = [[r["publication_id"], label_of(r["study_type"])] for r in rows]
    return s


def _breakable(text: str) -> str:
    """Rule names are long words (`patients.first_dose_date.not_after_recorded_at`): a
    zero-width space after each dot and underscore lets the page wrap them inside the
    column instead of pushing the table past the margin."""
    return text.replace(".", ".\u200b").replace("_", "_\u200b")


def _completeness(db: _Reader, figures: dict) -> Section:
    s = Section("completeness", "Data completeness per site",
                [PAGE_DEFINITIONS["completeness"], DEFINITIONS["submission_rows"]])
    subs = db.rows("SELECT * FROM marts.submissions ORDER BY site_id, ingested_at, submission_id")
    quarantine = db.rows("""SELECT site_id, rule, count(*) AS n
                            FROM (SELECT site_id, unnest(rules) AS rule FROM raw.quarantine)
                            GROUP BY ALL ORDER BY site_id, rule""")
    issues = db.rows("SELECT site_id, issue, count(*) AS n FROM marts.data_issues GROUP BY ALL "
                     "ORDER BY site_id, issue")
    sites = sorted({r["site_id"] for r in subs})
    body, fig = [], []
    for site in sites:
        mine = [r for r in subs if r["site_id"] == site]
        last = max(mine, key=lambda r: (r["ingested_at"], r["submission_id"]))
        ok = [r for r in mine if r["status"] == "accepted"]
        sums = [sum(as_int(r[c]) for r in ok) for c in ("rows", "events", "duplicates", "quarantined")]
        q = "; ".join(f"{r['rule']} {r['n']:,}" for r in quarantine if r["site_id"] == site) or DASH
        i = "; ".join(f"{r['issue']} {r['n']:,}" for r in issues if r["site_id"] == site) or DASH
        body.append([site, f"{last['submission_id']} ({last['status']}), ingested {fmt_time(last['ingested_at'])}",
                     f"{len(ok):,} / {len(mine) - len(ok):,}", *(f"{v:,}" for v in sums),
                     _breakable(q), _breakable(i)])
        fig.append([site, last["submission_id"], last["status"], len(ok), len(mine) - len(ok), *sums, q, i])
    s.tables.append(("", Table(["Site", "Last submission", "Accepted / rejected", "Rows", "Events",
                                "Duplicates", "Quarantined", "Quarantined rows by rule", "Data issues"], body)))
    rejected = [r for r in subs if r["status"] != "accepted"]
    if rejected:
        s.tables.append(("Rejected submissions", Table(
            ["Site", "Submission", "Ingested", "Rule", "Reason"],
            [[r["site_id"], r["submission_id"], fmt_time(r["ingested_at"]), label_of(r["rule"], DASH),
              label_of(r["reason"], DASH)] for r in rejected])))
    figures["completeness"] = fig
    return s


def _stamp_section(stamp: Stamp) -> Section:
    s = Section("stamp", "Reproducibility stamp", [PAGE_DEFINITIONS["fingerprint"]])
    s.lines = [f"As of {stamp.as_of.isoformat()} (UTC): events the pipeline had committed by then.",
               f"{stamp.events:,} events used ("
               + ", ".join(f"{t} {n:,}" for t, n in stamp.events_by_table.items()) + ") from "
               + f"{plural(stamp.batches, 'batch', 'batches')} ({plural(stamp.files, 'file')}).",
               f"Fingerprint (SHA-256): {stamp.fingerprint}",
               f"Reproduce: safety-ledger report --as-of {stamp.as_of.isoformat()} --out DIR"]
    return s


def _render_html(sections: list[Section], stamp: Stamp) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    template = env.get_template("report.html.j2")
    return template.render(sections=sections, stamp=stamp, definitions=DEFINITIONS,
                           page_definitions=PAGE_DEFINITIONS, markup=jinja2.utils.markupsafe.Markup)


def _render_pdf(html: str, stamp: Stamp) -> bytes:
    from weasyprint import HTML

    # The file identifier is derived from the fingerprint (else WeasyPrint hashes the
    # content, which is also stable, but this names the events); no other date but the
    # as-of time is written (dcterms.created / modified in the HTML head).
    return HTML(string=html, base_url=str(TEMPLATE_DIR)).write_pdf(
        pdf_identifier=stamp.fingerprint[:32].encode())


def report(home: Home, as_of: datetime, out: Path,
           progress: Callable[[str], None] = print, now: datetime | None = None) -> Pack:
    """Write the board pack for `as_of` into `out` (created if missing)."""
    import duckdb

    from .atomic import atomic_path
    from .build import build

    as_of = _utc(as_of)
    now = _utc(now or datetime.now(timezone.utc))
    if as_of > now:
        raise ReportError(f"--as-of {as_of.isoformat()} is in the future: a pack as of a time that has "
                          "not come yet could change later; use a past time")
    stamp = fingerprint(home, as_of)
    if stamp.batches == 0:
        raise ReportError(f"no batch had been ingested into {home.root} by {as_of.isoformat()}: "
                          "nothing to report (run `safety-ledger ingest` or choose a later --as-of)")
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="safety-ledger-report-") as tmp:
        # a full replay into a new file: never a copy of, nor a change to, another warehouse
        summary = build(home, as_of=as_of, out=Path(tmp) / "board.duckdb", progress=progress,
                        incremental=False)
        if summary.events["submissions"] + summary.events["literature_drops"] != stamp.batches:
            raise ReportError("a batch was committed while the pack was being made: run the command again")
        stamp.events_by_table = {t: int(summary.events[t]) for t in EVENT_TABLES}
        stamp.events = sum(stamp.events_by_table.values())
        con = duckdb.connect(str(summary.path), read_only=True)
        try:
            con.execute("SET TimeZone = 'UTC'")
            db = _Reader(con)
            figures: dict[str, Any] = {}
            sections = [_stamp_section(stamp), _overview(db, figures), _open_signals(db, figures),
                        _rates(db, figures), _sites(db, figures), _rechallenge(db, figures),
                        _irae(db, figures)]
            onset = _onset(db, figures)
            if onset is not None:
                sections.append(onset)
            sections += [_signals(db, figures), _literature(db, figures), _completeness(db, figures)]
        finally:
            con.close()
    html = _render_html(sections, stamp)
    pdf = _render_pdf(html, stamp)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "report.html", "pdf": out / "report.pdf", "figures": out / "figures.json"}
    doc = {"stamp": stamp.as_dict(), "figures": figures}
    for key, data in (("html", html.encode("utf-8")), ("pdf", pdf),
                      ("figures", (json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n").encode())):
        with atomic_path(paths[key]) as tmp_path:
            tmp_path.write_bytes(data)
            tmp_path.chmod(0o644)  # a document to hand round, not a secret
    progress(f"board pack as of {as_of.isoformat()}: {paths['html']}, {paths['pdf']} "
             f"({stamp.events:,} events, fingerprint {stamp.fingerprint[:16]}…)")
    return Pack(out=out, html=paths["html"], pdf=paths["pdf"], figures=paths["figures"], stamp=stamp)
