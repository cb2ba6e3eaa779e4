"""Schema loading cost: QEMU 7.2's ``qapi/`` tree into the model plus every
command and event JSON Schema, beside a bare parse of the same files.

The floor is the parse alone: every file of the tree read and split into
top-level expressions by the same parser, with no includes followed, no
checks and no model.  The target (issue 2) is model + all schemas in under
3x that floor.

    python bench/schema_load.py [--runs N] [--tree PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from timing import median_seconds

from conformance.qapi import load
from conformance.qapi.source import parse_text
from conformance.specs import Specs

DEFAULT_TREE = Path(__file__).resolve().parents[1].parent / "shared/corpus/qapi/v7.2.0"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--tree", type=Path, default=DEFAULT_TREE)
    args = parser.parse_args()
    if not args.tree.is_dir():
        print(f"no schema tree at {args.tree} (needs ../shared/corpus)", file=sys.stderr)
        return 2
    files = load(args.tree).files
    texts = [(f, Path(f).read_text()) for f in files]

    def bare_parse() -> None:
        for name, text in texts:
            parse_text(text, name)

    def model_and_schemas() -> None:
        specs = Specs(load(args.tree))
        specs.all_documents()

    def model_schemas_and_validators() -> None:
        specs = Specs(load(args.tree))
        for name in specs.schema.commands:
            specs.validator("arguments", name)
            specs.validator("return", name)
        for name in specs.schema.events:
            specs.validator("data", name)

    floor = median_seconds(bare_parse, args.runs)
    full = median_seconds(model_and_schemas, args.runs)
    with_validators = median_seconds(model_schemas_and_validators, args.runs)
    size = sum(len(t) for _, t in texts)
    print(f"tree: {args.tree} ({len(files)} files, {size / 1024:.0f} KiB), median of {args.runs}")
    print(f"bare parse (floor)                 {floor * 1000:8.1f} ms")
    print(f"model + every JSON Schema          {full * 1000:8.1f} ms   ratio {full / floor:.2f}x")
    print(
        f"... + compiled validators          {with_validators * 1000:8.1f} ms   "
        f"ratio {with_validators / floor:.2f}x"
    )
    print(f"target: model + all schemas < 3x floor: {'met' if full / floor < 3 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
