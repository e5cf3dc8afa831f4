"""The steps bench/run.py starts as child processes (one process per step, so that the
parent reads each step's own peak RSS from wait4).  Each writes its figures as JSON.

    python bench/steps.py generate  --landing L --sites S --patients P --seed N --json F
    python bench/steps.py extra     --landing L --scratch T --sites S --patients P --seed N
                                    --submission-id ID --exported-at TS --json F
    python bench/steps.py ingest    --home H --json F
    python bench/steps.py dashboard --warehouse W --repeat 30 --json F
    python bench/steps.py compare   --got W1 --want W2 --json F
"""
from __future__ import annotations

import argparse
import ast
import csv
import json
import re
import resource
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _dump(path: str, data: dict) -> None:
    Path(path).write_text(json.dumps(data, indent=2, default=str) + "\n")


# ------------------------------------------------------------------------ generate


def cmd_generate(args) -> None:
    from safety_ledger import generator

    t = time.perf_counter()
    summary = generator.generate(Path(args.landing), sites=args.sites, patients=args.patients,
                                 seed=args.seed, progress=print)
    d = summary.to_dict()
    d["seconds"] = time.perf_counter() - t
    _dump(args.json, d)


# ------------------------------------------------------------------------ the 1% batch

REF_COLUMNS = ("patient_ref", "infusion_ref", "reaction_ref", "irae_ref", "ref")


def cmd_extra(args) -> None:
    """A further batch: the generator writes new patients (with their infusions,
    reactions and irAEs) for the first `sites` sites into a scratch folder; each of its
    submissions is re-sent into the landing as a NEW submission of that existing site,
    every record reference prefixed so that none collides with a record already
    ingested.  Written with submission_writer.write_submission (manifest last)."""
    from safety_ledger import contract, generator
    from safety_ledger.submission_writer import write_submission

    scratch = Path(args.scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    t = time.perf_counter()
    summary = generator.generate(scratch, sites=args.sites, patients=args.patients, seed=args.seed,
                                 submissions_per_site=1, progress=None)
    prefix = f"{args.submission_id}-"
    written, rows = [], 0
    for sub in summary.submissions:
        folder = scratch / sub.site_id / sub.submission_id
        files = {}
        for name in contract.FILES:
            path = folder / name
            if not path.exists():
                continue
            with open(path, newline="", encoding="utf-8") as f:
                data = list(csv.DictReader(f))
            for row in data:
                for c in REF_COLUMNS:
                    if row.get(c):
                        row[c] = prefix + row[c]
            files[name] = data
            rows += len(data)
        written.append(str(write_submission(Path(args.landing), sub.site_id, args.submission_id,
                                            args.exported_at, files)))
    shutil.rmtree(scratch, ignore_errors=True)
    _dump(args.json, {"submissions": written, "rows": rows, "expected_events": summary.expected_events,
                      "seconds": time.perf_counter() - t})


# ------------------------------------------------------------------------ ingest


PARSING = ("frame_for",)


def cmd_ingest(args) -> None:
    """`safety-ledger ingest`, in-process. The GX step's time is what
    safety_ledger.validation.STATS measured (frame building, checkpoint runs, Data Docs),
    in this process and in the ingest's worker processes, whose peak RSS is kept too."""
    import safety_ledger.validation as validation
    from safety_ledger import ingest_workers

    from safety_ledger.home import Home
    from safety_ledger.ingest import ingest_landing

    t = time.perf_counter()
    reports = ingest_landing(Home.from_env(args.home), progress=print)
    seconds = time.perf_counter() - t
    accepted = [r for r in reports if r.status == "accepted"]
    result = {
        "seconds_in_process": seconds,
        "accepted": len(accepted),
        "rejected": sum(r.status == "rejected" for r in reports),
        "skipped": sum(r.status == "skipped" for r in reports),
        "rows": sum(r.rows for r in accepted),
        "events": sum(r.events for r in accepted),
        "duplicates": sum(r.duplicates for r in accepted),
        "quarantined": sum(r.quarantined for r in accepted),
        # GX proper: the checkpoint runs and Data Docs; frame_for parses the cells into
        # the typed frame that both GX and the event columns use, so it is kept apart
        "gx_seconds": sum(v for k, (v, _) in validation.STATS.items() if k not in PARSING),
        "parsing_seconds": sum(v for k, (v, _) in validation.STATS.items() if k in PARSING),
        "gx_breakdown": {k: {"seconds": v, "calls": n} for k, (v, n) in sorted(validation.STATS.items())},
        # seconds of work summed over the processes (more than the wall time with workers)
        "workers": len(ingest_workers.LAST_RUN.get("workers", {})),
        "parent_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "workers_peak_rss_bytes": [w["peak_rss_bytes"] for _, w in
                                   sorted(ingest_workers.LAST_RUN.get("workers", {}).items())],
        "forkserver_peak_rss_bytes": ingest_workers.LAST_RUN.get("forkserver_peak_rss_bytes", 0),
    }
    print(json.dumps(result))
    _dump(args.json, result)


# ------------------------------------------------------------------------ dashboard

def _dashboard_sql():
    """The SQL the dashboard runs, taken from its own modules (not copied here)."""
    from dashboard import data as dd
    from dashboard import filters as ff
    return dd, ff


def _table_sql(name: str) -> str:
    return f'select * from marts."{name}"'            # dashboard.data.Warehouse.table()


TIMELINE = "timeline of the first listed patient"   # its parameters: read at run time


def page_queries() -> list[tuple[str, list[tuple[str, str, object]]]]:
    """(page title, [(label, sql, params)]) for every page of dashboard/app.py, read from
    the sources: the frame (app.py) runs on every page, then the page file's own calls of
    wh.table("x"), d.totals(wh) (marts.reaction_rate_by_site), d.build_info(wh)
    (marts.build_info), d.warehouse() (the information_schema listing), filters.sidebar(wh)
    (the filter options), filters.query(wh, filters.<fn>(flt)) (run with no filter set, as
    on a first page load) and wh.sql(filters.TIMELINE_SQL, ...) (the first listed patient).
    A literal wh.sql("...") is run as written; a call we cannot read makes the bench fail
    rather than under-count."""
    dd, ff = _dashboard_sql()
    no_filter = ff.Filters()
    app = (ROOT / "dashboard" / "app.py").read_text()
    pages = re.findall(r'st\.Page\(\s*"([^"]+)"\s*,\s*title="([^"]+)"', app)
    if not pages:
        raise RuntimeError("no st.Page(...) found in dashboard/app.py")

    def queries(src: str) -> list[tuple[str, str, object]]:
        found: list[tuple[int, str, str, object]] = []
        for m in re.finditer(r'\bd\.warehouse\(\)', src):
            found.append((m.start(), "warehouse() table list", dd.TABLES_SQL, ()))
        for m in re.finditer(r'\bfilters\.sidebar\(wh\)', src):
            found.append((m.start(), "filters: options", ff.OPTIONS_SQL, ()))
        for m in re.finditer(r'\bwh\.table\(\s*([^)]*)\)', src):
            arg = m.group(1).strip()
            lit = re.fullmatch(r'"(\w+)"', arg)
            if lit:
                found.append((m.start(), f"marts.{lit.group(1)}", _table_sql(lit.group(1)), ()))
            elif arg == "table":  # reaction_rates.section(table, ...): its calls below
                continue
            else:
                raise RuntimeError(f"cannot read the table of wh.table({arg})")
        for m in re.finditer(r'\bsection\(\s*"(\w+)"', src):
            found.append((m.start(), f"marts.{m.group(1)}", _table_sql(m.group(1)), ()))
        for m in re.finditer(r'\bd\.totals\(wh\)', src):
            found.append((m.start(), "totals: marts.reaction_rate_by_site",
                          _table_sql("reaction_rate_by_site"), ()))
        for m in re.finditer(r'\bd\.build_info\(wh\)', src):
            found.append((m.start(), "build_info: marts.build_info", _table_sql("build_info"), ()))
        # Run only on a link, a search or a choice, not on a page load: the patient's own
        # row, the data issues of the sites chosen on the Sites page.
        ON_DEMAND = (r'filters\.query\(wh, filters\.patient_sql\(',
                     r'wh\.sql\((filters\.PATIENT_SEARCH_SQL|ISSUES_OF_SITES_SQL),')
        # Run only when a filter is set (not on a first page load): the Reaction rates
        # page's recomputed counts per group.
        FILTERED_ONLY = r'filters\.query\(wh, filters\.rates_by_sql\(flt, key\)\)'
        for m in re.finditer(r'\bfilters\.query\(', src):
            if not (re.match(r'filters\.query\(\s*wh\s*,\s*filters\.\w+\(flt\)\s*\)', src[m.start():])
                    or re.match(ON_DEMAND[0], src[m.start():])
                    or re.match(FILTERED_ONLY, src[m.start():])):
                raise RuntimeError(f"cannot read the query of {src[m.start():m.start() + 60]!r}")
        for m in re.finditer(r'\bfilters\.query\(\s*wh\s*,\s*filters\.(\w+)\(flt\)\s*\)', src):
            # Inside `if flt.active` a filtered query does not run on a first page load.
            # (the last top-level statement before the call starts with `if flt.active`).
            top = [ln for ln in src[:m.start()].splitlines() if ln[:1] not in ("", " ", "#", ")")]
            if top and re.match(r'(if|elif) flt\.active\b', top[-1]):
                continue
            sql, params = getattr(ff, m.group(1))(no_filter)
            found.append((m.start(), f"filters.{m.group(1)}", sql, tuple(params)))
        line_starts = [0]
        for line in src.splitlines(keepends=True):
            line_starts.append(line_starts[-1] + len(line))
        for node in ast.walk(ast.parse(src)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "sql" and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "wh"):
                continue
            start = line_starts[node.lineno - 1] + node.col_offset
            arg = ast.get_source_segment(src, node)[len("wh.sql("):-1].strip()
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and len(node.args) == 1:
                found.append((start, " ".join(first.value.split())[:40], first.value, ()))
            elif (len(node.args) == 1 and isinstance(first, ast.Attribute) and isinstance(first.value, ast.Name)
                  and first.value.id == "d" and isinstance(getattr(dd, first.attr, None), str)):
                # a query the pages share, kept in dashboard/data.py
                found.append((start, f"d.{first.attr}", getattr(dd, first.attr), ()))
            elif re.fullmatch(r'filters\.TIMELINE_SQL\s*,\s*\[site_id, patient_key\]', arg):
                found.append((start, TIMELINE, ff.TIMELINE_SQL, TIMELINE))
            elif re.match(ON_DEMAND[1], src[start:]):
                continue
            else:
                raise RuntimeError(f"cannot read the SQL of wh.sql({arg})")
        return [(label, sql, params) for _, label, sql, params in sorted(found)]

    frame = [(f"frame: {label}", sql, params) for label, sql, params in queries(app)]
    out = []
    for path, title in pages:
        # st.cache_data serves a repeated (file, sql, params) from its cache within the page
        # load: each distinct query runs once
        unique: dict[tuple, tuple[str, str, object]] = {}
        for label, sql, params in frame + queries((ROOT / "dashboard" / path).read_text()):
            unique.setdefault((sql, params if params == TIMELINE else tuple(params)),
                              (label, sql, params))
        out.append((title, list(unique.values())))
    return out


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def cmd_dashboard(args) -> None:
    """Every page's queries, each as dashboard.data runs it on a cache miss of its
    st.cache_data: on the one read-only connection the dashboard keeps per warehouse file
    (dashboard.data.SharedConnection: an in-memory DuckDB with the file ATTACHed READ_ONLY,
    opened once), a new cursor, USE, execute, fetch a DataFrame, close the cursor;
    `repeat` times.  A page load is the sum of its queries in one round (cold result cache:
    the first view after a build).  Opening the connection is timed on its own: the
    dashboard pays it once per file identity, not per query."""
    dd, ff = _dashboard_sql()
    pages = page_queries()
    warehouse = str(Path(args.warehouse).resolve())

    def connect() -> float:
        t0 = time.perf_counter()
        con = dd.SharedConnection(warehouse)
        took = time.perf_counter() - t0
        con.retire()
        return took

    opens = [connect() for _ in range(args.repeat)]  # what one rebuilt file costs, once
    shared = dd.SharedConnection(warehouse)

    # The timeline's parameters: the first patient the page would list.
    first = shared.query(*ff.timeline_patients_sql(ff.Filters()))
    timeline_params = ((str(first["site_id"].iloc[0]), str(first["patient_key"].iloc[0]))
                       if len(first) else ("", ""))

    def run(sql: str, params) -> float:
        if params == TIMELINE:
            params = timeline_params
        t0 = time.perf_counter()
        shared.query(sql, params)
        return time.perf_counter() - t0

    for _, qs in pages:  # one warm-up round (page cache of the OS)
        for _, sql, params in qs:
            run(sql, params)
    result = {"repeat": args.repeat, "query_path": "shared read-only connection, cursor per query",
              "connect_p50_ms": 1000 * _pct(opens, 0.5), "connect_p95_ms": 1000 * _pct(opens, 0.95),
              "pages": []}
    for title, qs in pages:
        per_query = [[] for _ in qs]
        per_page = []
        for _ in range(args.repeat):
            total = 0.0
            for j, (_, sql, params) in enumerate(qs):
                s = run(sql, params)
                per_query[j].append(s)
                total += s
            per_page.append(total)
        result["pages"].append({
            "page": title,
            "queries": [{"query": label, "p50_ms": 1000 * _pct(v, 0.5), "p95_ms": 1000 * _pct(v, 0.95)}
                        for (label, _, _), v in zip(qs, per_query)],
            "page_p50_ms": 1000 * _pct(per_page, 0.5), "page_p95_ms": 1000 * _pct(per_page, 0.95),
        })
    shared.retire()
    _dump(args.json, result)
    print(f"connect (once per warehouse file): p50 {result['connect_p50_ms']:.1f} ms, "
          f"p95 {result['connect_p95_ms']:.1f} ms")
    for p in result["pages"]:
        print(f"{p['page']}: {len(p['queries'])} queries, page p50 {p['page_p50_ms']:.1f} ms, "
              f"p95 {p['page_p95_ms']:.1f} ms, slowest query p95 "
              f"{max(q['p95_ms'] for q in p['queries']):.1f} ms")


# ------------------------------------------------------------------------ compare


def cmd_compare(args) -> None:
    """The incremental warehouse (--got) against a full replay of the same events (--want),
    relation by relation, row by row (safety_ledger/warehouse_diff.py)."""
    from safety_ledger.warehouse_diff import compare

    t = time.perf_counter()
    c = compare(Path(args.got), Path(args.want))
    _dump(args.json, {"differences": c.differences, "relations": c.relations, "rows": c.rows,
                      "seconds": time.perf_counter() - t})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True)
    s = sub.add_parser("generate")
    s.add_argument("--landing", required=True)
    s.add_argument("--sites", type=int, required=True)
    s.add_argument("--patients", type=int, required=True)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--json", required=True)
    s.set_defaults(func=cmd_generate)
    s = sub.add_parser("extra")
    s.add_argument("--landing", required=True)
    s.add_argument("--scratch", required=True)
    s.add_argument("--sites", type=int, required=True)
    s.add_argument("--patients", type=int, required=True)
    s.add_argument("--seed", type=int, default=8)
    s.add_argument("--submission-id", required=True)
    s.add_argument("--exported-at", required=True)
    s.add_argument("--json", required=True)
    s.set_defaults(func=cmd_extra)
    s = sub.add_parser("ingest")
    s.add_argument("--home", required=True)
    s.add_argument("--json", required=True)
    s.set_defaults(func=cmd_ingest)
    s = sub.add_parser("dashboard")
    s.add_argument("--warehouse", required=True)
    s.add_argument("--repeat", type=int, default=30)
    s.add_argument("--json", required=True)
    s.set_defaults(func=cmd_dashboard)
    s = sub.add_parser("compare")
    s.add_argument("--got", required=True)
    s.add_argument("--want", required=True)
    s.add_argument("--json", required=True)
    s.set_defaults(func=cmd_compare)
    args = p.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
