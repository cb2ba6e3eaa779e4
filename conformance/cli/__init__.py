"""The ``qmp-conform`` command line.

Each subcommand lives in its own module (``conformance.cli.<name>``) exposing
``register(subparsers)``; this module finds and wires them together, so adding a
subcommand is adding a module, never editing another's code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from conformance import __version__
from conformance.errors import ConformanceError
from conformance.qapi.model import Schema
from conformance.session import schema_from

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
#: Exit status when stdout's reader went away (128 + SIGPIPE, as in a shell).
EXIT_PIPE_CLOSED = 141


def load_schema(source: str, leniency: str = "auto") -> Schema:
    """The schema at ``source`` (a path or a target, see ``schema_from``); one
    warning line on stderr when it was read only as the QEMU of its time
    read it (``Schema.tolerated``).

    Raises what ``schema_from`` raises (TargetError, QAPIError).
    """
    schema = schema_from(source, leniency)
    if schema.tolerated:
        print(
            f"qmp-conform: warning: {schema.source or source}: read as its own QEMU "
            f"read it: {'; '.join(schema.tolerated)}",
            file=sys.stderr,
        )
    return schema


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
    OSError it raises is printed as one line and gives 2, Ctrl-C gives 130, and
    a closed output pipe ends it quietly with 141, as a shell tool would.
    A malformed command line makes argparse exit with status 2 (SystemExit).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except ConformanceError as exc:
        print(f"qmp-conform {args.command}: error: {exc.brief()}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (``| head``): nothing is wrong, and nothing
        # more may be written; the interpreter's final flush must not fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE_CLOSED
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
