"""``qmp-conform check``: run the conformance catalogue against a target.

Exit status: 0 when nothing failed, 1 when a check failed (or the harness
broke on one), 2 for usage errors or a target that cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from typing import Any, TextIO

from conformance.checks import catalogue
from conformance.checks.context import DIALECTS
from conformance.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, UsageError
from conformance.runner import CheckResult, Runner, RunResult
from conformance.transport import TargetError, parse_target

#: Transcript lines shown per failure on stdout (the JSON keeps them all).
SHOWN_LINES = 40
SHOWN_WIDTH = 240


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "check", help="run the conformance checks against a QMP server",
        description="Run the conformance catalogue against a QMP server and report "
                    "pass / fail / skip per check, with evidence for every failure.")
    p.add_argument("--target", required=True, metavar="T",
                   help="unix:PATH, tcp:HOST:PORT, spawn:COMMAND or reference[:OPTS] "
                        "(OPTS: dialect=D, defect=NAME, comma-separated)")
    p.add_argument("--dialect", choices=DIALECTS,
                   help="force the dialect (default: from the greeting; none = qga)")
    p.add_argument("--only", action="append", metavar="GLOB",
                   help="run only checks whose id matches GLOB (repeatable)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON ('-' = stdout)")
    p.add_argument("--junit", metavar="FILE", help="write the results as JUnit XML")
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="deadline for each reply (default 5 s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    checks = catalogue(args.only)
    if args.only and not checks:
        raise UsageError(f"--only {' '.join(args.only)} matches no check (see --list)")
    if args.list:
        for c in checks:
            print(f"{c.id:32} {c.rule:14} {c.title}")
        return EXIT_OK
    try:
        parse_target(args.target)
    except TargetError as exc:
        raise UsageError(str(exc)) from exc
    try:
        result = Runner(args.target, args.dialect, args.only, args.timeout).run()
    except TargetError as exc:
        print(f"qmp-conform check: cannot use target: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = sys.stderr if args.json == "-" else sys.stdout
    print_summary(result, out)
    if args.json:
        write_json(result, args.json)
    if args.junit:
        write_junit(result, args.junit)
    return EXIT_OK if result.ok else EXIT_FINDINGS


def print_summary(result: RunResult, out: TextIO) -> None:
    """One line per check, then a rule / expected / seen / transcript block per failure."""
    print(f"target:  {result.target}", file=out)
    print(f"dialect: {result.dialect}", file=out)
    if result.greeting is not None:
        print(f"greeting: {json.dumps(result.greeting)}", file=out)
    print(file=out)
    for r in result.results:
        print(f"  {r.status.upper():5} {r.id:32} {r.rule:12} {_first_line(r)}", file=out)
    for r in result.results:
        if r.status in ("fail", "error") or r.message.startswith("KNOWN DEVIATION"):
            _print_block(r, out)
    s = result.summary
    print(f"\n{s['pass']} passed, {s['fail']} failed, {s['skip']} skipped, {s['error']} errors "
          f"in {result.duration:.1f} s", file=out)


def _first_line(r: CheckResult) -> str:
    return (r.message.splitlines() or [""])[0][:100]


def _print_block(r: CheckResult, out: TextIO) -> None:
    bar = "=" * 78
    print(f"\n{bar}\n{r.status.upper()}: {r.id}: {r.title}", file=out)
    print(f"rule: {r.rule} (see the Q-numbered checklist of the reference notes)", file=out)
    print(r.message, file=out)
    if r.transcript:
        print("transcript (-> sent, <- received, -- harness note; seconds since connect):",
              file=out)
        lines = r.transcript
        if len(lines) > SHOWN_LINES:
            lines = [*lines[:10], f"... [{len(lines) - SHOWN_LINES} lines elided; "
                     "full transcript in --json] ...", *lines[-(SHOWN_LINES - 10):]]
        for line in lines:
            shown = line if len(line) <= SHOWN_WIDTH else line[:SHOWN_WIDTH] + " ..."
            print(f"  {shown}", file=out)


def write_json(result: RunResult, path: str) -> None:
    text = json.dumps(result.to_json(), indent=1)
    if path == "-":
        print(text)
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def junit_xml(result: RunResult) -> ET.ElementTree:
    s = result.summary
    suite = ET.Element("testsuite", name=f"qmp-conform {result.target}",
                       tests=str(len(result.results)), failures=str(s["fail"]),
                       errors=str(s["error"]), skipped=str(s["skip"]),
                       time=f"{result.duration:.3f}")
    for r in result.results:
        case = ET.SubElement(suite, "testcase", classname=f"qmp.{r.id.split('.')[0]}",
                             name=r.id, time=f"{r.duration:.3f}")
        tag = {"fail": "failure", "error": "error", "skip": "skipped"}.get(r.status)
        if tag is not None:
            child = ET.SubElement(case, tag, message=_first_line(r))
            if r.status != "skip":
                child.text = f"rule {r.rule}\n{r.message}\n\n" + "\n".join(r.transcript)
    return ET.ElementTree(suite)


def write_junit(result: RunResult, path: str) -> None:
    tree = junit_xml(result)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
