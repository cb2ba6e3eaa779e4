"""Schema loading cost beside QEMU's own frontend, measured in one run.

Three timings, medians of ``--runs``:

1. ours: QEMU 7.2's ``qapi/`` tree into the model plus every command's and
   event's JSON Schema (``Specs(...).all_documents()``);
2. QEMU's 7.2 frontend on the same tree: ``QAPISchema(path)``, which parses
   and checks it (imported from ``../shared/corpus/qemu-frontend``, run as a
   yardstick, never copied);
3. ``qmp-conform schema --check`` on QEMU 10.2's tree (strict read, every
   rule of the current generator, the model).

The targets (issue 14): (1) and (3) each at most QEMU's time, aiming at half.

    python bench/schema_load.py [--runs N]
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from contextlib import redirect_stderr
from pathlib import Path

from timing import median_seconds

from conformance.qapi import load
from conformance.qapi.check import check
from conformance.specs import Specs

CORPUS = Path(__file__).resolve().parents[1].parent / "shared/corpus"
TREE_72 = CORPUS / "qapi/v7.2.0/qapi/qapi-schema.json"
TREE_102 = CORPUS / "qapi/v10.2.0/qapi/qapi-schema.json"
QEMU_SCRIPTS = CORPUS / "qemu-frontend/v7.2.0/scripts"


def qemu_frontend() -> Callable[[str], object]:
    """QEMU 7.2's ``QAPISchema`` class, imported from the corpus."""
    sys.path.insert(0, str(QEMU_SCRIPTS))
    from qapi.schema import QAPISchema  # type: ignore[import-not-found]

    schema_class: Callable[[str], object] = QAPISchema
    return schema_class


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    missing = [p for p in (TREE_72, TREE_102, QEMU_SCRIPTS) if not p.exists()]
    if missing:
        print(f"missing {missing[0]} (needs ../shared/corpus)", file=sys.stderr)
        return 2
    qapi_schema = qemu_frontend()

    def ours() -> None:
        Specs(load(TREE_72)).all_documents()

    def qemu() -> None:
        # QEMU's frontend prints nothing on success; keep stray warnings quiet.
        with redirect_stderr(io.StringIO()):
            qapi_schema(str(TREE_72))

    def ours_check() -> None:
        check(str(TREE_102))

    rows = [
        ("ours: 7.2 model + every JSON Schema", median_seconds(ours, args.runs)),
        ("QEMU 7.2 frontend: QAPISchema(7.2)", median_seconds(qemu, args.runs)),
        ("ours: --check on 10.2", median_seconds(ours_check, args.runs)),
    ]
    base = rows[1][1]
    print(f"median of {args.runs} runs")
    for label, seconds in rows:
        print(f"{label:40} {seconds * 1000:8.1f} ms   {seconds / base:5.2f}x QEMU")
    worst = max(rows[0][1], rows[2][1]) / base
    print(f"target: ours <= 1.0x QEMU (aim 0.5x): {'met' if worst <= 1.0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
