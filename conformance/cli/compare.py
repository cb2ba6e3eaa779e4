"""``qmp-conform compare --target A --target B``: one check catalogue, several
targets, one matrix; where verdicts differ the evidence is shown side by side.

Saved runs (``--results FILE``, the JSON result document) can stand in for
targets or be mixed with them, so a matrix can be rebuilt without rerunning.
Exit status: 0 when every target agrees, 1 when verdicts differ, 2 on errors.
"""

from __future__ import annotations

import argparse
from typing import Any

from conformance.cli import EXIT_FINDINGS, EXIT_OK, UsageError
from conformance.cli.report import write_output
from reports.matrix import RENDERERS, build
from reports.results import load_results, validate


def register(subparsers: Any) -> None:
    """Add the ``compare`` subcommand and its options to ``subparsers``."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "compare", help="run the checks on several targets and render a check-by-target matrix"
    )
    p.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="TARGET",
        help="a target to run (unix:PATH, tcp:HOST:PORT, spawn:CMD, reference[:OPTS]); "
        "repeat for each",
    )
    p.add_argument(
        "--results",
        action="append",
        default=[],
        metavar="FILE",
        help="a saved JSON result document to include as a column; repeatable",
    )
    p.add_argument(
        "--only",
        metavar="IDS",
        help="run only the checks whose id matches this glob (e.g. 'greeting.*')",
    )
    p.add_argument(
        "--format", choices=sorted(RENDERERS), default="md", help="output format (default md)"
    )
    p.add_argument("--out", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(func=run)


def run_target(spec: str, only: str | None) -> dict[str, Any]:
    """The result document of the catalogue (or ``only`` part of it) run against ``spec``.

    Raises TargetError when ``spec`` is malformed or the target cannot be reached.
    """
    from conformance import runner

    return validate(runner.run(spec, only=only).to_json())


def run(args: argparse.Namespace) -> int:
    """Run ``compare``: 0 when every column agrees, 1 when verdicts differ.

    Raises :class:`UsageError` for fewer than two columns, ResultsError when a
    ``--results`` file cannot be read or has the wrong shape, TargetError when a
    target cannot be reached, and OSError when ``--out`` cannot be written; all
    end in exit status 2.
    """
    if len(args.target) + len(args.results) < 2:
        raise UsageError("give at least two columns (--target and/or --results)")
    docs = []
    docs = [load_results(path) for path in args.results]
    docs += [run_target(spec, args.only) for spec in args.target]
    matrix = build(docs)
    write_output(RENDERERS[args.format](matrix), args.out)
    return EXIT_FINDINGS if matrix.differing else EXIT_OK
