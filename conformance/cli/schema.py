"""``qmp-conform schema``: load any schema source, summarise it, export JSON Schema,
or check QAPI source by the rules of QEMU's current generator (``--check``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from conformance.cli import EXIT_FINDINGS, EXIT_OK, UsageError, load_schema
from conformance.protocol.dialects import DIALECTS
from conformance.qapi.check import check
from conformance.qapi.errors import QAPIError
from conformance.qapi.introspect import introspect
from conformance.specs import Specs


def register(sub: Any) -> None:
    """Add the ``schema`` subcommand and its options to ``sub``."""
    p: argparse.ArgumentParser = sub.add_parser(
        "schema",
        help="load a QAPI schema and summarise or export it",
        description="Load a schema from QAPI source (a file or a QEMU tree), the 2011 "
        "list form, a query-qmp-schema introspection file, or a live target "
        "(unix:PATH, tcp:HOST:PORT, spawn:COMMAND, reference), then print "
        "a summary or write JSON Schema.  --check judges QAPI source by the rules "
        "of QEMU's current generator (10.2) instead.",
    )
    p.add_argument(
        "source", metavar="SOURCE", help="schema file or folder, introspection JSON, or a target"
    )
    p.add_argument(
        "--summary",
        action="store_true",
        help="print counts as JSON (the default when nothing else is asked)",
    )
    p.add_argument(
        "--jsonschema",
        metavar="DIR",
        help="write JSON Schema for every command, event and wire message",
    )
    p.add_argument(
        "--introspect", metavar="FILE", help="write the schema as query-qmp-schema would return it"
    )
    p.add_argument(
        "--no-mask",
        action="store_true",
        help="with --introspect, keep type names instead of numbering them",
    )
    p.add_argument(
        "--leniency",
        choices=("auto", "strict", "lenient"),
        default="auto",
        help="accept what only an old release's QEMU accepted (1.x's missing "
        "commas, '**' for any, ...; a warning line says what): always (lenient), "
        "never (strict), or only when today's rules reject the schema (auto, the default)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="check QAPI source (a file or a QEMU tree) by the rules of QEMU's current "
        "generator, strictly (no lenient retry): the first error is printed as "
        "file:line: message (file:line:col: for syntax) and gives exit status 1; "
        "a schema that passes prints one OK line, and any other option then runs "
        "on it",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``schema``: 0 once the schema is summarised, exported or checked; 1
    when ``--check`` finds an error (printed as one line on stderr).

    Raises UsageError when ``--check`` names no file or folder, TargetError when
    the source path does not exist or a target gives no schema, QAPIError when
    the schema does not load, and OSError when an output file cannot be
    written; all end in exit status 2.
    """
    if args.check:
        if not os.path.exists(args.source):
            raise UsageError(f"--check needs a QAPI file or a QEMU tree, not {args.source!r}")
        try:
            schema = check(args.source)
        except QAPIError as exc:
            print(exc, file=sys.stderr)
            return EXIT_FINDINGS
        counts = schema.summary()
        print(
            f"{schema.source}: OK by QEMU 10.2's rules ({len(schema.files)} files, "
            f"{counts['commands']} commands, {counts['events']} events)"
        )
        if not (args.jsonschema or args.introspect or args.summary):
            return EXIT_OK
    else:
        schema = load_schema(args.source, args.leniency)
    did_something = False
    if args.jsonschema:
        written = Specs(schema).export(args.jsonschema, dialects=DIALECTS.values())
        print(f"wrote {len(written)} JSON Schema files under {args.jsonschema}")
        did_something = True
    if args.introspect:
        with open(args.introspect, "w", encoding="utf-8") as f:
            json.dump(introspect(schema, mask=not args.no_mask), f, indent=1)
            f.write("\n")
        did_something = True
    if args.summary or not did_something:
        print(json.dumps(schema.summary(), indent=2))
    return EXIT_OK
