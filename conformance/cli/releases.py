"""``qmp-conform releases``: the real QEMU releases fetched on this machine.

Lists each release that ``scripts/fetch-releases.sh`` unpacked, with the
target string for each of its servers, ready for ``check``, ``fuzz`` or
``compare``.  Exit status 0, or 1 when none was fetched.
"""

from __future__ import annotations

import argparse
from typing import Any

from conformance import releases
from conformance.cli import EXIT_FINDINGS, EXIT_OK


def register(subparsers: Any) -> None:
    """Add the ``releases`` subcommand and its options to ``subparsers``."""
    p = subparsers.add_parser(
        "releases",
        help="list the real QEMU releases fetched here, as targets",
        description="List the QEMU releases scripts/fetch-releases.sh fetched "
        f"(in $QMP_CONFORM_RELEASES, default {releases.DEFAULT_DIR}) "
        "with a target string per server program.",
    )
    p.add_argument(
        "--targets",
        action="store_true",
        help="print only the target strings, one per line (for scripts)",
    )
    p.add_argument(
        "--program",
        action="append",
        choices=sorted(releases.SERVERS),
        help="only this server program (repeatable)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``releases``: 0 when releases were listed, 1 when none was fetched.

    Raises nothing on purpose; an unreadable release folder (OSError) ends in
    exit status 2.
    """
    found = releases.available()
    if not found:
        print(f"no release fetched in {releases.directory()} (run scripts/fetch-releases.sh)")
        return EXIT_FINDINGS
    for release in found:
        if not args.targets:
            print(f"QEMU {release.name} ({release.package}) in {release.path}")
        for program, target in release.targets():
            if args.program and program not in args.program:
                continue
            print(target if args.targets else f"  {program:20} {target}")
    return EXIT_OK
