"""``qmp-conform fuzz``: a fuzzing campaign against a target.

Exit status: 1 when something was found, 0 when nothing was, 2 on usage or
connection errors.  Ctrl-C ends the campaign cleanly (exit status as if it
had run out of time) after printing the summary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from conformance.cli import EXIT_FINDINGS, EXIT_OK, UsageError


def register(subparsers: Any) -> None:
    """Add the ``fuzz`` subcommand and its options to ``subparsers``."""
    p = subparsers.add_parser(
        "fuzz",
        help="fuzz a QMP server with generated traffic; keep every finding",
        description="Run a Hypothesis-driven fuzzing campaign: valid and invalid requests, "
        "raw bytes, in-band and OOB commands over one or more connections, judged "
        "by the protocol oracles; with --stateful, the job and negotiation state "
        "machines too. Each confirmed finding is written at once to "
        "OUT/findings/<rule>-<signature>.qmp (replay it with 'qmp-conform replay'). "
        "Exit 1 when something was found, 0 when not, 2 on usage/connection errors.",
    )
    p.add_argument(
        "--target",
        required=True,
        metavar="T",
        help="unix:PATH, tcp:HOST:PORT, spawn:COMMAND or reference[:OPTS]",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="stop after S seconds (default 60 unless --max-examples)",
    )
    budget.add_argument(
        "--max-examples", type=int, metavar="N", help="stop after N examples (programs) in all"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes, each with its own target instance when the "
        "target is started by the campaign (default 1)",
    )
    p.add_argument(
        "--db",
        metavar="PATH|redis://HOST:PORT/DB",
        help="Hypothesis example database (default OUT/hypothesis-db)",
    )
    p.add_argument(
        "--out",
        default="qmp-fuzz",
        metavar="DIR",
        help="output folder: findings/ and summary.json (default ./qmp-fuzz)",
    )
    p.add_argument(
        "--db-only",
        action="store_true",
        help="only replay the examples already in the database (e.g. failures "
        "found by other machines sharing a Redis database); generate nothing",
    )
    p.add_argument("--seed", type=int, metavar="N", help="seed the generation")
    p.add_argument(
        "--commands",
        action="append",
        metavar="GLOB",
        help="commands to generate as valid requests (repeatable; default: "
        "every command with --confine, else query-* and a few harmless ones; "
        "see docs/fuzzing.md)",
    )
    p.add_argument(
        "--confine",
        action="store_true",
        help="run a spawn: target disposable and confined (bubblewrap namespaces, "
        "a private /tmp, no network, QEMU's -sandbox) and generate every command "
        "of its schema (see docs/fuzzing.md)",
    )
    p.add_argument(
        "--probe-timeout",
        type=float,
        default=3.0,
        metavar="S",
        help="seconds a server may take to answer the probe that ends each "
        "example before it counts as hung (default 3)",
    )
    p.add_argument(
        "--stateful",
        choices=("off", "mix", "only"),
        default="off",
        help="run the job and negotiation state machines too: 'mix' takes turns with "
        "the protocol programs, 'only' runs the machines alone (default off: they add "
        "nodes and jobs and load snapshots, which a campaign against a live VM must "
        "not do unless asked; see docs/fuzzing.md)",
    )
    p.add_argument(
        "--machine",
        action="append",
        dest="machines",
        metavar="NAME",
        help="with --stateful: run only this machine (repeatable): BlockJobMachine, "
        "JobFrameworkMachine, SnapshotJobMachine, NegotiationMachine",
    )
    p.add_argument("--quiet", action="store_true", help="no live progress")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``fuzz``: 1 when something was found, 0 when not (Ctrl-C included).

    Raises :class:`UsageError` for a bad ``--workers``, ``--max-examples`` or
    ``--duration``, TargetError when the target is malformed or cannot be
    started, DatabaseError when the example database cannot be opened,
    SetupError when no worker could start, and OSError when the output folder
    cannot be written; all end in exit status 2.
    """
    from conformance.confine import confine
    from conformance.errors import ConformanceError
    from conformance.fuzz.database import open_database
    from conformance.fuzz.generate import DEFAULT_COMMANDS, EVERY_COMMAND
    from conformance.fuzz.progress import Progress, Stats
    from conformance.fuzz.stateful import BY_NAME
    from conformance.fuzz.targets import dialect_of
    from conformance.fuzz.workers import CampaignSpec, run_inline, run_parallel

    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.max_examples is not None and args.max_examples < 1:
        raise UsageError("--max-examples must be at least 1")
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be positive")
    machines = tuple(args.machines or ())
    unknown = [m for m in machines if m not in BY_NAME]
    if unknown:
        raise UsageError(f"no stateful machine {', '.join(unknown)} (known: {', '.join(BY_NAME)})")
    if machines and args.stateful == "off":
        raise UsageError("--machine needs --stateful mix or --stateful only")
    duration = args.duration if args.duration is not None or args.max_examples else 60.0
    target = confine(args.target) if args.confine else args.target
    dialect = dialect_of(target)
    db = args.db or os.path.join(args.out, "hypothesis-db")
    open_database(db)  # fail early (exit 2) on an unreachable Redis
    spec = CampaignSpec(
        target=target,
        out_dir=args.out,
        duration=duration,
        max_examples=args.max_examples,
        seed=args.seed,
        db=db,
        commands=tuple(args.commands or (EVERY_COMMAND if args.confine else DEFAULT_COMMANDS)),
        probe_timeout=args.probe_timeout,
        dialect=dialect,
        db_only=args.db_only,
        stateful=args.stateful,
        machines=machines,
    )
    os.makedirs(args.out, exist_ok=True)
    progress = Progress(quiet=args.quiet)
    stats = Stats()
    try:
        if args.workers == 1:
            stats = run_inline(spec, progress)
        else:
            stats = run_parallel(spec, args.workers, progress)
    except ConformanceError:
        progress.close()
        raise
    except KeyboardInterrupt:
        stats.interrupted = True
    progress.update(stats, force=True)
    progress.close()
    summary = stats.summary(
        progress.elapsed,
        target=target,
        workers=args.workers,
        seed=args.seed,
        database=db,
        out=os.path.abspath(args.out),
        stateful=args.stateful,
    )
    text = json.dumps(summary, indent=2)
    with open(os.path.join(args.out, "summary.json"), "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    print(text)
    sys.stdout.flush()
    for name, reason in sorted(stats.stateful_skipped.items()):
        print(f"qmp-conform fuzz: {name} not run: {reason}", file=sys.stderr)
    if stats.gone:
        print(
            f"qmp-conform fuzz: the target cannot be reached again ({stats.gone}); "
            f"the campaign stopped early",
            file=sys.stderr,
        )
    return EXIT_FINDINGS if stats.findings else EXIT_OK
