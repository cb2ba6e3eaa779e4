"""``qmp-conform diff OLD NEW``: what breaks for a client between two schemas.

OLD and NEW are schema files or folders (QAPI source, introspection JSON) or
live targets (``unix:``, ``tcp:``, ``spawn:``, ``reference``), whose
``query-qmp-schema`` is fetched.  Exit status: 1 when breaking changes remain
after ``--allow``, 0 otherwise, 2 for usage and load errors (a CI gate).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from conformance.cli import EXIT_FINDINGS, EXIT_OK, load_schema
from conformance.cli.report import write_output
from reports.allow import AllowList
from reports.diff import diff
from reports.diff_render import RENDERERS


def register(subparsers: Any) -> None:
    """Add the ``diff`` subcommand and its options to ``subparsers``."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "diff",
        help="compatibility diff between two schemas (CI gate on breaking changes)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("old", metavar="OLD", help="old schema: file, folder or target")
    p.add_argument("new", metavar="NEW", help="new schema: file, folder or target")
    p.add_argument(
        "--format", choices=sorted(RENDERERS), default="md", help="report format (default md)"
    )
    p.add_argument("--out", metavar="FILE", help="write the report here instead of stdout")
    p.add_argument(
        "--allow",
        metavar="FILE",
        help="accepted breaking changes: one path pattern per line, * wildcard, "
        "# comments (see docs/compatibility.md)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``diff``: 1 when breaking changes remain after ``--allow``, else 0.

    Raises AllowFileError when the allow file cannot be read, TargetError when
    a schema path does not exist or a target gives no schema, QAPIError when a
    schema does not load, and OSError when ``--out`` cannot be written; all end
    in exit status 2.
    """
    allow = AllowList.read(args.allow) if args.allow else AllowList(())
    report = diff(load_schema(args.old), load_schema(args.new))
    write_output(RENDERERS[args.format](report), args.out)
    blocking = allow.unallowed(report.breaking)
    counts = report.counts()
    print(
        f"qmp-conform diff: {counts['breaking']} breaking ({len(blocking)} not allowed), "
        f"{counts['deprecated-removal']} deprecated removals, {counts['unstable']} unstable, "
        f"{counts['introspection-only']} introspection-only, {counts['compatible']} compatible",
        file=sys.stderr,
    )
    return EXIT_FINDINGS if blocking else EXIT_OK
