"""``qmp-conform report RESULTS.json``: render a saved check run for CI or people."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from conformance.cli import EXIT_OK
from reports.results import RENDERERS, load_results


def register(subparsers: Any) -> None:
    """Add the ``report`` subcommand and its options to ``subparsers``."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "report", help="render a saved JSON result as JUnit XML, Markdown, HTML or JSON"
    )
    p.add_argument("results", metavar="RESULTS.json", help="a result document saved by a run")
    p.add_argument(
        "--format", choices=sorted(RENDERERS), default="md", help="output format (default md)"
    )
    p.add_argument("--out", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(func=run)


def write_output(text: str, out: str | None) -> None:
    """Write ``text`` to the file ``out``, or to stdout when ``out`` is None.

    Raises OSError when the file cannot be written.
    """
    if out is None:
        sys.stdout.write(text)
        return
    Path(out).write_text(text, encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    """Run ``report``: 0 once the document is rendered.

    Raises ResultsError when the result file cannot be read or has the wrong
    shape, and OSError when ``--out`` cannot be written; both end in exit status 2.
    """
    doc = load_results(args.results)
    write_output(RENDERERS[args.format](doc), args.out)
    return EXIT_OK
