"""Generation speed: our strategies beside hypothesis-jsonschema, same run.

For the arguments of QEMU 7.2's 20 largest non-recursive commands (size =
number of types reachable from the arguments), draw examples with each
generator inside one Hypothesis test per command and generator, then
validate every example against our JSON Schema (``Specs``).  hypothesis-
jsonschema supports drafts 4-7 only, so it gets our 2020-12 document rewritten
to draft-07 (``$defs`` -> ``definitions``).  Prints examples per second, the
validity rate of each, and the ratio.

    python bench/generation.py [--examples N] [--schema PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

import strategies
from conformance.qapi import load
from conformance.qapi.model import Schema
from conformance.specs import Specs

DEFAULT_SCHEMA = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "corpus"
    / "introspection"
    / "qemu-7.2.json"
)


def _shim_many_more() -> None:
    """Give Hypothesis's ``many`` back the ``more()`` hypothesis-jsonschema 0.23.1
    calls: newer Hypothesis replaced it by a context manager and iterator, and
    without this every object schema crashes (AttributeError)."""
    from hypothesis.internal.conjecture import utils as cu

    if hasattr(cu.many, "more"):
        return

    def more(self: Any) -> bool:
        if getattr(self, "_shim_iter", None) is None:
            self.__enter__()
            self._shim_iter = iter(self)
        try:
            next(self._shim_iter)
        except StopIteration:
            self.__exit__(None)
            return False
        return True

    cu.many.more = more  # type: ignore[attr-defined]


def largest_commands(schema: Schema, count: int) -> list[str]:
    compiled = strategies.compiled(schema)
    sizes = []
    for name, cmd in schema.commands.items():
        if cmd.arg_type is None:
            continue
        reachable = schema.walk_types([cmd.arg_type])
        if any(t in compiled._cyclic for t in reachable):
            continue
        sizes.append((len(reachable), name))
    return [name for _, name in sorted(sizes, reverse=True)[:count]]


def to_draft7(doc: Any) -> Any:
    """Our 2020-12 document as draft-07: ``$defs`` renamed, refs rewritten."""
    if isinstance(doc, dict):
        out = {("definitions" if k == "$defs" else k): to_draft7(v) for k, v in doc.items()}
        if isinstance(out.get("$ref"), str):
            out["$ref"] = out["$ref"].replace("#/$defs/", "#/definitions/")
        if "$schema" in out:
            out["$schema"] = "http://json-schema.org/draft-07/schema#"
        return out
    if isinstance(doc, list):
        return [to_draft7(v) for v in doc]
    return doc


def measure(strategy: st.SearchStrategy[Any], examples: int) -> tuple[list[Any], float]:
    drawn: list[Any] = []

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
    )
    @given(strategy)
    def draw(value: Any) -> None:
        drawn.append(value)

    start = time.perf_counter()
    draw()
    return drawn, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=200, help="examples per command")
    parser.add_argument("--commands", type=int, default=20)
    parser.add_argument("--schema", default=str(DEFAULT_SCHEMA))
    args = parser.parse_args()
    if not Path(args.schema).exists():
        print(f"schema {args.schema} not found (needs ../shared/corpus)", file=sys.stderr)
        return 2
    schema = load(args.schema)
    _shim_many_more()
    specs = Specs(schema)
    names = largest_commands(schema, args.commands)
    totals: dict[str, list[float]] = {"ours": [0, 0, 0.0], "hypothesis-jsonschema": [0, 0, 0.0]}
    failed: dict[str, str] = {}
    print(f"{'command':32} {'ours ex/s':>10} {'valid':>6} {'h-js ex/s':>10} {'valid':>6}")
    for name in names:
        row: list[tuple[float, float] | None] = []
        generators = {
            "ours": strategies.arguments(schema, name),
            "hypothesis-jsonschema": from_schema(
                to_draft7(json.loads(json.dumps(specs.command_arguments(name))))
            ),
        }
        for label, strategy in generators.items():
            try:
                drawn, seconds = measure(strategy, args.examples)
            except Exception as exc:  # a generator crash is a result, not the end of the run
                failed[f"{label}/{name}"] = f"{type(exc).__name__}: {str(exc)[:100]}"
                row.append(None)
                continue
            valid = sum(not specs.errors("arguments", name, v) for v in drawn)
            totals[label][0] += len(drawn)
            totals[label][1] += valid
            totals[label][2] += seconds
            row.append((len(drawn) / seconds, valid / max(len(drawn), 1)))
        print(
            f"{name:32} "
            + " ".join(
                f"{'crashed':>10} {'-':>6}" if r is None else f"{r[0]:10.0f} {r[1]:6.1%}"
                for r in row
            )
        )
    rates: dict[str, float] = {}
    for label, (count, n_valid, seconds) in totals.items():
        rates[label] = count / seconds if seconds else 0.0
        print(
            f"{label:22} {count:6.0f} examples in {seconds:6.2f} s = {rates[label]:7.0f} ex/s,"
            f" validity {n_valid / max(count, 1):.1%}"
        )
    for where, why in failed.items():
        print(f"crashed: {where}: {why}")
    print("(rates and validity are over the commands each generator completed)")
    theirs = rates["hypothesis-jsonschema"]
    ratio = f"{rates['ours'] / theirs:.2f}x" if theirs else "n/a (it completed no command)"
    print(f"ratio (ours / hypothesis-jsonschema): {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
