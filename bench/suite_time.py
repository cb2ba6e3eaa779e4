"""Wall time of the whole check catalogue against QEMU 7.2 and the reference server.

Run: ``python bench/suite_time.py [--runs N]``.  Each target is timed in the
same run, start-up included (spawning QEMU, starting the reference server);
the target is under 10 s each.  Prints min / median / max and the ratio of
the medians.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time

from conformance.runner import run

QEMU = "spawn:qemu-system-x86_64 -machine none -nodefaults -display none -qmp stdio"
TARGET_SECONDS = 10.0


def time_target(target: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = run(target)
        times.append(time.perf_counter() - started)
        s = result.summary
        print(
            f"  {target[:40]:40} {times[-1]:6.2f} s  pass {s['pass']} fail {s['fail']} "
            f"skip {s['skip']} error {s['error']}"
        )
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    targets = {"reference server": "reference"}
    if shutil.which("qemu-system-x86_64"):
        targets["QEMU 7.2 (spawn)"] = QEMU
    medians = {}
    for label, target in targets.items():
        print(f"{label}:")
        times = time_target(target, args.runs)
        medians[label] = statistics.median(times)
        verdict = "OK" if medians[label] < TARGET_SECONDS else "OVER TARGET"
        print(
            f"  min {min(times):.2f} / median {medians[label]:.2f} / max {max(times):.2f} s "
            f"(target < {TARGET_SECONDS:g} s: {verdict})"
        )
    if len(medians) == 2:
        ratio = medians["reference server"] / medians["QEMU 7.2 (spawn)"]
        print(f"reference / QEMU median wall time: {ratio:.2f}")


if __name__ == "__main__":
    main()
