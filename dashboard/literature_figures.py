"""The figures a publication reports, read from its `key_finding` text.

The literature drop (samples/literature/README.md, format version 1) carries one free-text
`key_finding` per publication and no numeric field: the seed's Table 3 "Key result" cells
("ORR 35%, PFS 8.6-9.8mo, OS up to 27mo", "ICER: $67,378/QALY") verbatim.  This module
splits such a text into the measures a board compares — ORR, PFS, OS, ICER, and other
named figures (pCR, MPR, ...) — keeping each fragment's words as printed (nothing is
converted or rounded), and finds any stated infusion-reaction or irAE rate, which the
rate charts draw as a labelled reference line.

Rules (each clause = the text between ", " / "; " / ". "; a comma inside a number, as in
"$70,220-75,944", does not split):
- a clause that names a measure (word ORR, PFS, OS, mOS, mPFS, ICER, pCR, MPR, DCR, CR
  rate...) belongs to it; a clause that names none continues the previous clause's measure
  ("ORR: Cervical 32%, ESCC 18%" -> ORR "Cervical 32%; ESCC 18%");
- an "other" measure counts only with a figure (a % or a duration: "CR for 10 months",
  not "CR in HER2+ patient");
- the measure's word is dropped from the fragment when the clause starts with it
  ("ORR 35%" -> "35%", "ICER: $67,378/QALY" -> "$67,378/QALY"), kept otherwise
  ("12mo OS 79%", "mOS 17mo" stay whole).
- a safety rate is a clause with a percentage that names infusion-related reactions (IRR,
  infusion reaction, hypersensitivity, anaphylaxis) or irAEs (irAE, immune-related adverse
  event), or continues a clause that did; "grade 3+" / "grade ≥3" / "grade 3 or higher"
  makes it a grade 3+ rate; "of patients" / "of infusions" says its denominator.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MEASURES = ("ORR", "PFS", "OS", "ICER")
_MEASURE_RE = re.compile(
    r"(?<![A-Za-z])(m?PFS|m?OS|ORR|ICER|pCR|MPR|DCR|CR|PR|DoR|mDoR|HR)(?![A-Za-z])")
_CANON = {"mPFS": "PFS", "mOS": "OS"}
_SPLIT_RE = re.compile(r"(?:[;,]|\.(?!\d))\s+")
_PCT_RE = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_FIGURE_RE = re.compile(r"\d+(?:\.\d+)?\s*(?:%|mo\b|months?\b|weeks?\b|years?\b)")
_REACTION_RE = re.compile(r"infusion[- ]related reactions?|infusion reactions?|\bIRRs?\b|"
                          r"hypersensitivity|anaphyla", re.I)
_IRAE_RE = re.compile(r"\birAEs?\b|immune[- ]related adverse events?", re.I)
_G3_RE = re.compile(r"grade\s*(?:≥|>=)\s*3|grade\s*3\s*(?:\+|or (?:higher|more|above)|-5|–5)",
                    re.I)


def clauses(text: str) -> list[str]:
    return [c.strip().rstrip(".") for c in _SPLIT_RE.split(text or "") if c.strip()]


def figures(text: str) -> dict[str, str]:
    """{measure: fragments joined by '; '} for ORR, PFS, OS, ICER and 'Other' (every other
    named measure, with its name kept)."""
    out: dict[str, list[str]] = {}
    current: str | None = None
    for clause in clauses(text):
        m = _MEASURE_RE.search(clause)
        if m:
            word = m.group(1)
            current = _CANON.get(word, word)
            frag = clause
            if m.start() == 0 and word in MEASURES:
                frag = clause[m.end():].lstrip(" :").strip()
        elif current is None:
            continue
        else:
            frag = clause
        key = current if current in MEASURES else "Other"
        if not m and not re.search(r"\d", frag):
            continue  # a continuation without any figure is prose, not a figure
        if key == "Other" and not _FIGURE_RE.search(frag):
            continue  # "CR in HER2+ patient": a named response, but no figure
        out.setdefault(key, []).append(frag)
    return {k: "; ".join(v) for k, v in out.items()}


@dataclass(frozen=True)
class ReportedRate:
    publication_id: str
    kind: str          # 'reaction' or 'irae'
    grade: str         # 'any' or '3+'
    rate: float        # a proportion (0.045 for "4.5%")
    per: str           # 'patients', 'infusions' or 'not stated'
    text: str          # the clause as printed

    @property
    def label(self) -> str:
        per = "" if self.per == "not stated" else f" of {self.per}"
        return f"{self.publication_id}: {self.rate * 100:g}%{per}"


def reported_rates(publication_id: str, text: str) -> list[ReportedRate]:
    out: list[ReportedRate] = []
    topic: str | None = None
    for clause in clauses(text):
        if _REACTION_RE.search(clause):
            topic = "reaction"
        elif _IRAE_RE.search(clause):
            topic = "irae"
        elif _MEASURE_RE.search(clause):
            topic = None  # an efficacy figure ends the safety topic
        pct = _PCT_RE.search(clause)
        if topic is None or not pct:
            continue
        per = ("patients" if re.search(r"\bpatients?\b", clause, re.I) else
               "infusions" if re.search(r"\binfusions?\b", clause, re.I) else "not stated")
        out.append(ReportedRate(publication_id, topic, "3+" if _G3_RE.search(clause) else "any",
                                float(pct.group(1)) / 100, per, clause))
    return out
