"""``qmp-conform report RESULTS.json``: render a saved check run for CI or people."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from conformance.cli import EXIT_OK
from reports.results import RENDERERS, load_results


def register(subparsers: Any) -> None:
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
    if out is None:
        sys.stdout.write(text)
        return
    Path(out).write_text(text, encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    doc = load_results(args.results)
    write_output(RENDERERS[args.format](doc), args.out)
    return EXIT_OK
