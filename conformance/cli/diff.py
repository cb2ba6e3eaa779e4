"""``qmp-conform diff OLD NEW``: what breaks for a client between two schemas.

OLD and NEW are schema files or folders (QAPI source, introspection JSON) or
live targets (``unix:``, ``tcp:``, ``spawn:``, ``reference``), whose
``query-qmp-schema`` is fetched.  Exit status: 1 when breaking changes remain
after ``--allow``, 0 otherwise, 2 for usage and load errors (a CI gate).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from conformance.cli import EXIT_FINDINGS, EXIT_OK, UsageError
from conformance.qapi import QAPIError, Schema, load
from reports.allow import AllowFileError, AllowList
from reports.diff import diff
from reports.diff_render import RENDERERS

TARGET_PREFIXES = ("unix:", "tcp:", "spawn:", "reference")


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "diff", help="compatibility diff between two schemas (CI gate on breaking changes)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("old", metavar="OLD", help="old schema: file, folder or target")
    p.add_argument("new", metavar="NEW", help="new schema: file, folder or target")
    p.add_argument("--format", choices=sorted(RENDERERS), default="md",
                   help="report format (default md)")
    p.add_argument("--out", metavar="FILE", help="write the report here instead of stdout")
    p.add_argument("--allow", metavar="FILE",
                   help="accepted breaking changes: one path pattern per line, * wildcard, "
                        "# comments (see docs/compatibility.md)")
    p.set_defaults(func=run)


def load_schema(spec: str) -> Schema:
    """A schema from a path, or fetched live from a target string."""
    try:
        if not os.path.exists(spec) and spec.startswith(TARGET_PREFIXES):
            from conformance.baseline import server_name
            from conformance.session import fetch_schema
            from conformance.transport import TargetError, parse_target
            greetings: list[dict[str, Any]] = []
            try:
                schema = load(fetch_schema(spec, on_greeting=greetings.append))
            except TargetError as exc:
                raise UsageError(str(exc)) from None
            # Named as the server names itself, with the program the run started.
            name = server_name(greetings[0]) if greetings else ""
            program = parse_target(spec).program
            schema.source = (f"{name}: {program}" if program else name) if name else spec
            return schema
        return load(spec)
    except QAPIError as exc:
        raise UsageError(str(exc).splitlines()[0]) from None


def run(args: argparse.Namespace) -> int:
    allow = AllowList(())
    if args.allow:
        try:
            allow = AllowList.read(args.allow)
        except AllowFileError as exc:
            raise UsageError(str(exc)) from None
    report = diff(load_schema(args.old), load_schema(args.new))
    text = RENDERERS[args.format](report)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{args.out}: {exc.strerror}") from None
    else:
        sys.stdout.write(text)
    blocking = allow.unallowed(report.breaking)
    counts = report.counts()
    print(f"qmp-conform diff: {counts['breaking']} breaking ({len(blocking)} not allowed), "
          f"{counts['deprecated-removal']} deprecated removals, {counts['unstable']} unstable, "
          f"{counts['introspection-only']} introspection-only, {counts['compatible']} compatible",
          file=sys.stderr)
    return EXIT_FINDINGS if blocking else EXIT_OK
