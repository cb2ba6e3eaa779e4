"""Campaign throughput: messages per second of a one-worker fuzzing campaign,
beside replays of the very same bytes to the same kind of server in the same
run, and the speed-up of two workers over one.  Target (issue 6): campaign
>= 0.8x the raw replay.

    python bench/fuzz_throughput.py [--duration S] [--targets reference,qemu]

"Messages" are the chunks a campaign sends (requests, raw byte chunks and
probes; negotiations are not replayed and not counted).  Two replays:

* raw: every chunk on one negotiated connection without OOB (QEMU 7.2
  aborts on some OOB input, see docs/fuzzing.md), replies read in a second
  thread, until the last probe is answered: the server's own limit;
* lanes: the programs as the campaign sent them (their connections, OOB
  and negotiation modes, IN_FLIGHT lanes, probes awaited), through the
  campaign's executor, with nothing generated and nothing judged: what the
  campaign would reach if Hypothesis and the oracles cost nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time

from conformance.fuzz.campaign import Campaign, CampaignConfig
from conformance.fuzz.database import open_database
from conformance.fuzz.execute import Executor, Pipeline
from conformance.fuzz.program import PROBE_COMMAND, Program
from conformance.fuzz.progress import Progress
from conformance.fuzz.targets import target_factory
from conformance.fuzz.workers import CampaignSpec, run_inline, run_parallel
from conformance.session import Session

TARGETS = {
    "reference": "reference",
    "qemu": "spawn:qemu-system-x86_64 -machine none -nodefaults -display none -qmp stdio",
}


def campaign_rate(target: str, duration: float, out: str) -> tuple[float, list[Program], int, int]:
    """(messages per second, the programs it ran, examples, lanes) of one
    in-process worker."""
    programs: list[Program] = []
    config = CampaignConfig(
        target=target,
        out_dir=out,
        duration=duration,
        seed=1,
        database=open_database(os.path.join(out, "db")),
        record=programs,
    )
    with Campaign(config) as campaign:
        lanes = campaign.lanes
        start = time.monotonic()
        campaign.run()
        elapsed = time.monotonic() - start
    return sum(_sent(p) for p in programs) / elapsed, programs, len(programs), lanes


def lanes_rate(target: str, programs: list[Program], lanes: int) -> float:
    """Messages per second of the same programs through the campaign's executor."""
    executor = Executor(target_factory(target))
    executor.concurrent = lanes > 1
    pipeline: Pipeline[None] = Pipeline(executor, lanes)
    try:
        start = time.monotonic()
        for program in programs:
            pipeline.push(program, None)
        pipeline.drain()
        elapsed = time.monotonic() - start
    finally:
        executor.close()
    return sum(_sent(p) for p in programs) / elapsed


def _sent(program: Program) -> int:
    return sum(1 for s in program.steps if s.data and s.kind != "negotiate")


def replay_rate(target: str, programs: list[Program]) -> float:
    """Messages per second of the same chunks, pipelined on one connection."""
    chunks = [s.data for p in programs for s in p.steps if s.data and s.kind != "negotiate"]
    probes = sum(1 for p in programs for s in p.steps if s.kind == "probe")
    tgt = target_factory(target)()
    try:
        session = Session(tgt.connect())
        session.read_greeting()
        session.negotiate()
        conn = session.conn
        seen = [0]
        done = threading.Event()
        needle = PROBE_COMMAND.encode()

        def reader() -> None:
            buffer = b""
            deadline = time.monotonic() + 600
            while seen[0] < probes and time.monotonic() < deadline:
                try:
                    data = conn.recv(1 << 16, 1.0)
                except Exception:
                    break
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                seen[0] += sum(1 for line in lines if needle in line and b'"id"' in line)
            done.set()

        thread = threading.Thread(target=reader, daemon=True)
        start = time.monotonic()
        thread.start()
        for chunk in chunks:
            conn.send(chunk, 60.0)
        done.wait(600)
        elapsed = time.monotonic() - start
        if seen[0] < probes:
            print(f"  (replay: only {seen[0]} of {probes} probes answered)", file=sys.stderr)
        session.close()
        return len(chunks) / elapsed
    finally:
        tgt.close()


def workers_rate(target: str, workers: int, duration: float, out: str) -> float:
    spec = CampaignSpec(
        target=target, out_dir=out, duration=duration, seed=3, db=os.path.join(out, "db")
    )
    progress = Progress(quiet=True)
    stats = run_inline(spec, progress) if workers == 1 else run_parallel(spec, workers, progress)
    return stats.messages / progress.elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--targets", default="reference,qemu")
    args = parser.parse_args()
    for name in args.targets.split(","):
        target = TARGETS[name]
        if name == "qemu" and shutil.which("qemu-system-x86_64") is None:
            print("qemu: skipped (qemu-system-x86_64 not installed)")
            continue
        with tempfile.TemporaryDirectory(prefix="qmp-bench-") as out:
            rate, programs, examples, lanes = campaign_rate(
                target, args.duration, os.path.join(out, "campaign")
            )
            raw = replay_rate(target, programs)
            piped = lanes_rate(target, programs, lanes)
            one = workers_rate(target, 1, args.duration, os.path.join(out, "w1"))
            two = workers_rate(target, 2, args.duration, os.path.join(out, "w2"))
        print(
            f"{name}: campaign {rate:.0f} msg/s ({examples} examples, {lanes} lane(s)); "
            f"same bytes: raw replay {raw:.0f} msg/s, ratio {rate / raw:.2f}x "
            f"(target >= 0.8x); lanes replay {piped:.0f} msg/s, ratio {rate / piped:.2f}x"
        )
        print(
            f"{name}: 1 worker {one:.0f} msg/s, 2 workers {two:.0f} msg/s, "
            f"speed-up {two / one:.2f}x (os.cpu_count() = {os.cpu_count()})"
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
