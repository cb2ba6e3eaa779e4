"""Time to diff two full QEMU introspections (7.2 -> 10.0, ~1,100 entries each).

Target: under 1 s.  Prints the median of several runs for the diff alone and
for load + diff (what ``qmp-conform diff`` does), beside an anchor measured
in the same run: ``json.load`` of the same two files, the least any tool
reading them must spend.

Usage: python bench/diff_time.py [--runs N] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from timing import median_seconds

from conformance.qapi import load
from reports.diff import diff

TARGET_SECONDS = 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus",
    )
    args = parser.parse_args()
    old_path = args.corpus / "introspection" / "qemu-7.2.json"
    new_path = args.corpus / "introspection" / "qemu-10.0.json"
    if not old_path.is_file() or not new_path.is_file():
        print(f"corpus not found under {args.corpus}; nothing to measure", file=sys.stderr)
        return 0
    old, new = load(old_path), load(new_path)
    entries = [len(json.loads(p.read_text())) for p in (old_path, new_path)]
    report = diff(old, new)

    def parse_only() -> None:
        for p in (old_path, new_path):
            json.loads(p.read_text())

    anchor = median_seconds(parse_only, args.runs)
    diff_only = median_seconds(lambda: diff(old, new), args.runs)
    end_to_end = median_seconds(lambda: diff(load(old_path), load(new_path)), args.runs)
    print(
        f"entries: {entries[0]} (7.2) and {entries[1]} (10.0); "
        f"{len(report.changes)} changes, counts {report.counts()}"
    )
    print(f"median of {args.runs} runs:")
    print(f"  anchor json.load of both files : {anchor * 1000:8.1f} ms")
    print(
        f"  diff (models loaded)           : {diff_only * 1000:8.1f} ms "
        f"({diff_only / anchor:.1f}x anchor)"
    )
    print(
        f"  load both + diff               : {end_to_end * 1000:8.1f} ms "
        f"({end_to_end / anchor:.1f}x anchor)"
    )
    verdict = "meets" if end_to_end < TARGET_SECONDS else "MISSES"
    print(
        f"  target {TARGET_SECONDS:.0f} s: {verdict} it "
        f"({end_to_end / TARGET_SECONDS:.3f} of the budget)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
