"""``qmp-conform replay FILE --target T``: does a stored finding still reproduce?

Exit status: 1 when it reproduces (the bug is still there: "something was
found", as for ``fuzz`` and ``check``), 0 when it does not (fixed, or
never reproducible there), 2 on usage or connection errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from conformance.cli import EXIT_FINDINGS, EXIT_OK, UsageError


def register(subparsers: Any) -> None:
    """Add the ``replay`` subcommand and its options to ``subparsers``."""
    p = subparsers.add_parser(
        "replay",
        help="re-send a finding's stored bytes and say whether it reproduces",
        description="Re-send the exact bytes stored in a finding file (written by "
        "'qmp-conform fuzz') to a target and judge the replies with the same "
        "oracles; a stateful finding's machine runs its stored steps again. "
        "Exit 1 when the finding reproduces, 0 when it does not, "
        "2 on usage or connection errors.",
    )
    p.add_argument("file", nargs="+", metavar="FILE", help="finding file(s) (.qmp)")
    p.add_argument(
        "--target",
        required=True,
        metavar="T",
        help="unix:PATH, tcp:HOST:PORT, spawn:COMMAND or reference[:OPTS]",
    )
    p.add_argument(
        "--confine",
        action="store_true",
        help="run a spawn: target confined, as 'qmp-conform fuzz --confine' does",
    )
    p.add_argument(
        "--attempts",
        type=int,
        default=2,
        help="fresh runs before concluding it does not reproduce (default 2)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object per file")
    p.add_argument("--quiet", action="store_true", help="no transcript")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``replay``: 1 when any finding reproduces, 0 when none does.

    Raises :class:`UsageError` when ``--attempts`` is below 1, FindingFileError
    when a file is not a finding, OSError when one cannot be read, and
    TargetError when the target is malformed or cannot be reached; all end in
    exit status 2.
    """
    from conformance.confine import confine
    from conformance.fuzz.findings import load
    from conformance.fuzz.replay import Replayer

    if args.attempts < 1:
        raise UsageError("--attempts must be at least 1")
    findings = [(path, load(path)) for path in args.file]
    target = confine(args.target) if args.confine else args.target
    replayer = Replayer(target)
    any_reproduced = False
    with replayer:
        for path, finding in findings:
            result = replayer.replay(finding, args.attempts)
            any_reproduced |= result.reproduced
            verdict = "reproduced" if result.reproduced else "not reproduced"
            if args.json:
                print(
                    json.dumps(
                        {
                            "file": path,
                            "rule": finding.rule,
                            "signature": finding.signature,
                            "reproduced": result.reproduced,
                            "attempts": result.attempts,
                            "seen": sorted({v.ident for v in result.violations}),
                        }
                    )
                )
                continue
            print(
                f"{path}: {finding.ident}: {verdict} on {args.target}"
                f"{' (confined)' if args.confine else ''} "
                f"({result.attempts} attempt(s))"
            )
            for v in result.violations:
                print(f"  {v.ident}: {v.summary}")
            if not args.quiet:
                for line in result.transcript():
                    print(f"  {line}")
            sys.stdout.flush()
    return EXIT_FINDINGS if any_reproduced else EXIT_OK
