"""The `safety-ledger` command. Each subcommand is a thin call into the core."""
from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from .home import Home


def _home(args) -> Home:
    return Home.from_env(args.home)


def _as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"--as-of {text!r} is not an ISO 8601 time, e.g. 2025-03-31T23:59:59+00:00")
    if ts.tzinfo is None:
        raise SystemExit(f"--as-of {text!r} needs an offset, e.g. 2025-03-31T23:59:59+00:00")
    return ts


def cmd_ingest(args) -> int:
    from .ingest import ingest_landing

    reports = ingest_landing(_home(args), Path(args.landing) if args.landing else None, workers=args.workers)
    accepted = [r for r in reports if r.status == "accepted"]
    rejected = [r for r in reports if r.status == "rejected"]
    print(f"{len(accepted)} accepted, {len(rejected)} rejected, "
          f"{sum(r.status == 'skipped' for r in reports)} already ingested, "
          f"{sum(r.status == 'waiting' for r in reports)} still being written; "
          f"{sum(r.events for r in accepted)} events, {sum(r.duplicates for r in accepted)} duplicates, "
          f"{sum(r.quarantined for r in accepted)} quarantined rows")
    return 0


def cmd_ingest_literature(args) -> int:
    from .literature import ingest_literature

    reports = ingest_literature(_home(args), Path(args.directory) if args.directory else None)
    print(f"{sum(r.status == 'accepted' for r in reports)} literature drop(s) accepted, "
          f"{sum(r.status == 'rejected' for r in reports)} rejected")
    return 0


def cmd_build(args) -> int:
    out = Path(args.out) if args.out else None
    if args.verify_replay:
        return _build_and_verify(_home(args), _as_of(args.as_of), out)
    from .build import build

    summary = build(_home(args), as_of=_as_of(args.as_of), out=out)
    print(f"published {summary.path}")
    return 0


def _build_and_verify(home: Home, as_of: datetime | None, out: Path | None) -> int:
    from .replay_check import build_and_verify

    check = build_and_verify(home, as_of=as_of, out=out)
    first, *rest = check.lines()
    if check.ok:
        print(first)
        return 0
    print(f"safety-ledger build: {first}", *rest, sep="\n", file=sys.stderr)
    return 1


def cmd_report(args) -> int:
    from .report import ReportError, report

    try:
        as_of = _as_of(args.as_of)
    except SystemExit as e:  # a mistyped time: one line, exit 2
        print(f"safety-ledger report: {e}", file=sys.stderr)
        return 2
    try:
        report(_home(args), as_of=as_of, out=Path(args.out))
    except ReportError as e:
        print(f"safety-ledger report: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_generate(args) -> int:
    from . import generator

    generator.generate(Path(args.out), **generator.kwargs_from_args(args))
    return 0


def cmd_verify(args) -> int:
    from .verify import verify

    report = verify(_home(args))
    for line in report.problems:
        print(f"BROKEN  {line}")
    for rel in report.uncommitted:
        print(f"note    {rel} is not committed by any ledger row (left by an interrupted run; ignored)")
    print(f"{report.batches} batches, {report.files} files checked: "
          f"{'all intact' if report.ok else f'{len(report.problems)} problem(s)'}")
    return 0 if report.ok else 1


def cmd_suites(args) -> int:
    from . import suites

    if args.check:
        drift = suites.drifted()
        if drift:
            print(f"expectations/ differs from the contract for: {', '.join(drift)}; "
                  "run `safety-ledger suites` and commit the result", file=sys.stderr)
            return 1
        print("expectations/ matches the contract")
        return 0
    for p in suites.write_all():
        print(f"wrote {p}")
    return 0


def cmd_demo(args) -> int:
    from .demo import demo

    return demo(_home(args), serve=not args.no_dashboard, port=args.port)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="safety-ledger", description=__doc__)
    p.add_argument("--home", help="state folder (default $SAFETY_LEDGER_HOME, else ./var)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", help="ingest every complete submission in the landing area")
    s.add_argument("landing", nargs="?", help="landing folder (default <home>/landing)")
    s.add_argument("--workers", type=int, default=None,
                   help="worker processes at most (default: one per core; sites are shared among them "
                        "when there is at least 32 MiB of CSV to ingest); 1: all in this process")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("ingest-literature", help="ingest literature drops")
    s.add_argument("directory", nargs="?", help="folder of drops (default <home>/literature)")
    s.set_defaults(func=cmd_ingest_literature)

    s = sub.add_parser("build", help="rebuild and publish the DuckDB warehouse from the events")
    s.add_argument("--as-of", help="use only events ingested by this time (ISO 8601 with offset)")
    s.add_argument("--out", help="warehouse file (default <home>/warehouse/safety.duckdb)")
    s.add_argument("--verify-replay", action="store_true",
                   help="then replay every event in full (no ingest meanwhile) and check that the published "
                        "warehouse is the same; if not, publish the full replay and exit 1")
    s.set_defaults(func=cmd_build)

    s = sub.add_parser("report", help="board pack: self-contained HTML + PDF of every figure as of a time")
    s.add_argument("--as-of", required=True,
                   help="use only events ingested by this time (ISO 8601 with offset)")
    s.add_argument("--out", required=True, help="folder to write report.html, report.pdf, figures.json")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("verify", help="re-check every batch: counts add up, files unchanged")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("generate", help="write deterministic synthetic site submissions")
    s.add_argument("--out", required=True, help="landing folder to write into")
    from .generator import add_arguments
    add_arguments(s)
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("suites", help="write expectations/ from the contract (--check: verify)")
    s.add_argument("--check", action="store_true")
    s.set_defaults(func=cmd_suites)

    s = sub.add_parser("demo", help="seed + synthetic sites + literature -> ingest -> build -> dashboard")
    s.add_argument("--no-dashboard", action="store_true", help="stop after the build")
    s.add_argument("--port", type=int, default=8501)
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        # a full disk or a read-only home: say what and where, no traceback
        print(f"safety-ledger: {e.strerror or e} ({e.filename or ''}); nothing was committed for the "
              "batch in progress: fix the cause and run the command again", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
