"""``qmp-conform check``: run the conformance catalogue against a target.

Exit status: 0 when nothing failed (failures the baseline expects included),
1 when a check failed, the harness broke on one, or (with
``--strict-baseline``) a baseline entry went stale; 2 for usage errors, an
unreadable baseline or a target that cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from conformance import baseline
from conformance.checks import catalogue
from conformance.cli import EXIT_FINDINGS, EXIT_OK, UsageError
from conformance.protocol.dialects import NAMES as DIALECT_NAMES
from conformance.runner import CheckResult, Runner, RunResult
from conformance.transport import parse_target
from conformance.verdicts import MEANING, STATUSES
from reports.results import RENDERERS

#: Transcript lines shown per failure on stdout (the JSON keeps them all).
SHOWN_LINES = 40
SHOWN_WIDTH = 240

#: Verdicts whose message and transcript the text summary prints in full.
DETAILED = ("fail", "error", "xfail", "xpass")


#: Where the rule ids come from.
RULE_SOURCES = (
    "Q: the QMP checklist of the reference notes; J: the job rules of "
    "conformance/protocol/jobs.py; C: the client rules of conformance/client/judge.py"
)


def register(subparsers: Any) -> None:
    """Add the ``check`` subcommand and its options to ``subparsers``."""
    p = subparsers.add_parser(
        "check",
        help="run the conformance checks against a QMP server",
        description="Run the conformance catalogue against a QMP server and report "
        "a verdict per check, with evidence for every failure.",
        epilog="verdicts: " + "; ".join(f"{s}: {MEANING[s]}" for s in STATUSES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--target",
        metavar="T",
        help="unix:PATH, tcp:HOST:PORT, spawn:COMMAND (COMMAND may hold "
        "{socket} and {dir}: the server is then started once and "
        "reached on that socket) or reference[:OPTS] "
        "(OPTS: dialect=D, defect=NAME, comma-separated)",
    )
    p.add_argument(
        "--dialect",
        choices=DIALECT_NAMES,
        help="force the dialect (default: from the greeting; none = qga)",
    )
    p.add_argument(
        "--only",
        action="append",
        metavar="GLOB",
        help="run only checks whose id matches GLOB (repeatable)",
    )
    p.add_argument(
        "--baseline",
        action="append",
        metavar="FILE",
        help="failures to expect (repeatable; 'builtin' names the built-in "
        "known deviations, the default when none is given; 'none' expects "
        "nothing)",
    )
    p.add_argument(
        "--strict-baseline",
        action="store_true",
        help="a baseline entry whose check now passes fails the gate",
    )
    p.add_argument(
        "--write-baseline",
        metavar="FILE",
        help="write a baseline expecting every failure of this run",
    )
    add_report_options(p)
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    p.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="deadline for each reply (default 5 s)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``check``: 0 when nothing failed (or with ``--list``), 1 when a check
    failed or broke, or a baseline entry went stale under ``--strict-baseline``.

    Raises :class:`UsageError` when ``--only`` matches no check or ``--target``
    is missing, TargetError when the target is malformed or cannot be reached,
    BaselineError when a baseline cannot be read, and OSError when an output
    file cannot be written; :func:`conformance.cli.main` makes them exit status 2.
    """
    checks = catalogue(args.only)
    if args.only and not checks:
        raise UsageError(f"--only {' '.join(args.only)} matches no check (see --list)")
    if args.list:
        for c in checks:
            print(f"{c.id:32} {c.rule:14} {c.title}")
        return EXIT_OK
    if not args.target:
        raise UsageError("--target is required (or --list)")
    parse_target(args.target)
    expected = baseline.load_all(args.baseline)
    result = Runner(
        args.target,
        args.dialect,
        args.only,
        args.timeout,
        baseline=expected,
        strict=args.strict_baseline,
    ).run()
    report(result, args)
    if args.write_baseline:
        _write(args.write_baseline, json.dumps(result.baseline(), indent=1) + "\n")
    return EXIT_OK if result.ok else EXIT_FINDINGS


def add_report_options(p: argparse.ArgumentParser) -> None:
    """The options that say where a run's verdicts go, in which formats."""
    p.add_argument(
        "--format",
        choices=["text", *sorted(RENDERERS)],
        default="text",
        help="what goes to stdout (default text, a summary for people)",
    )
    p.add_argument("--json", metavar="FILE", help="write the results as JSON ('-' = stdout)")
    p.add_argument("--junit", metavar="FILE", help="write the results as JUnit XML")
    p.add_argument("--tap", metavar="FILE", help="write the results as TAP version 14")


def report(result: RunResult, args: argparse.Namespace) -> None:
    """Write ``result`` as :func:`add_report_options` asked.  Raises OSError
    when a file cannot be written."""
    doc = result.to_json()
    to_stdout = args.format != "text" or args.json == "-"
    if args.format == "text":
        print_summary(result, sys.stderr if to_stdout else sys.stdout)
    else:
        sys.stdout.write(RENDERERS[args.format](doc))
    for path, kind in ((args.json, "json"), (args.junit, "junit"), (args.tap, "tap")):
        if path == "-":
            sys.stdout.write(RENDERERS[kind](doc))
        elif path:
            _write(path, RENDERERS[kind](doc))


def _write(path: str, text: str) -> None:
    Path(path).write_text(text, encoding="utf-8")


def print_summary(result: RunResult, out: TextIO) -> None:
    """One line per check, then a rule / expected / seen / transcript block per
    failure, expected failure and stale baseline entry."""
    print(f"target:  {result.target}", file=out)
    print(f"dialect: {result.dialect}", file=out)
    if result.server:
        print(f"server:  {result.server}", file=out)
    if result.greeting is not None:
        print(f"greeting: {json.dumps(result.greeting)}", file=out)
    print(file=out)
    for r in result.results:
        print(f"  {r.status.upper():5} {r.id:32} {r.rule:12} {_first_line(r)}", file=out)
    for r in result.results:
        if r.status in DETAILED:
            _print_block(r, out)
    s = result.summary
    extra = "".join(
        f", {s[k]} {label}"
        for k, label in (("xfail", "expected failures"), ("xpass", "stale baseline entries"))
        if s[k]
    )
    print(
        f"\n{s['pass']} passed, {s['fail']} failed, {s['skip']} skipped, {s['error']} errors"
        f"{extra} in {result.duration:.1f} s",
        file=out,
    )


def _first_line(r: CheckResult) -> str:
    return (r.message.splitlines() or [""])[0][:100]


def _print_block(r: CheckResult, out: TextIO) -> None:
    bar = "=" * 78
    print(f"\n{bar}\n{r.status.upper()}: {r.id}: {r.title}", file=out)
    print(f"rule: {r.rule} ({RULE_SOURCES})", file=out)
    print(r.message, file=out)
    if r.transcript:
        print(
            "transcript (-> sent, <- received, -- harness note; seconds since connect):", file=out
        )
        lines = r.transcript
        if len(lines) > SHOWN_LINES:
            lines = [
                *lines[:10],
                f"... [{len(lines) - SHOWN_LINES} lines elided; full transcript in --json] ...",
                *lines[-(SHOWN_LINES - 10) :],
            ]
        for line in lines:
            shown = line if len(line) <= SHOWN_WIDTH else line[:SHOWN_WIDTH] + " ..."
            print(f"  {shown}", file=out)
