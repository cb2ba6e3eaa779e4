"""``qmp-conform schema``: load any schema source, summarise it, export JSON Schema."""

from __future__ import annotations

import argparse
import json
from typing import Any

from conformance.cli import EXIT_OK, load_schema
from conformance.protocol.dialects import DIALECTS
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
        "a summary or write JSON Schema.",
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``schema``: 0 once the schema is summarised or exported.

    Raises TargetError when the source path does not exist or a target gives no
    schema, QAPIError when the schema does not load, and OSError when an output
    file cannot be written; all end in exit status 2.
    """
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
