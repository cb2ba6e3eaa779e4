"""The ``qmp-conform`` command line.

Each subcommand lives in its own module (``conformance.cli.<name>``) exposing
``register(subparsers)``; this module finds and wires them together, so adding a
subcommand is adding a module, never editing another's code.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from conformance import __version__
from conformance.errors import ConformanceError

#: The order ``--help`` lists subcommands in; others follow alphabetically.
PREFERRED_ORDER: tuple[str, ...] = (
    "check",
    "serve",
    "schema",
    "fuzz",
    "replay",
    "diff",
    "compare",
    "report",
    "releases",
)

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


class UsageError(ConformanceError):
    """A wrong or missing option: printed as one line, exit status 2."""


def subcommand_modules() -> list[str]:
    """The subcommand module names, in the order ``--help`` lists them."""
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    rank = {name: i for i, name in enumerate(PREFERRED_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def build_parser() -> argparse.ArgumentParser:
    """The ``qmp-conform`` parser, with every subcommand module registered on it."""
    parser = argparse.ArgumentParser(
        prog="qmp-conform",
        description="Conformance suite and fuzzer for QMP, the QEMU Machine Protocol.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in subcommand_modules():
        importlib.import_module(f"conformance.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``qmp-conform`` on ``argv`` (default: the process's) and return its exit status.

    That is the subcommand's own status, except that a ConformanceError or an
    OSError it raises is printed as one line and gives 2, and Ctrl-C gives 130.
    A malformed command line makes argparse exit with status 2 (SystemExit).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except ConformanceError as exc:
        print(f"qmp-conform {args.command}: error: {exc.brief()}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        # A file named on the command line that cannot be read or written.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"qmp-conform {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"qmp-conform {args.command}: interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
