"""The Jinja environments the renderers share, with the filters they need.

Templates live in ``reports/templates`` and ship inside the package, so a
rendered report needs nothing but the installed package.  HTML output is
autoescaped; Markdown output is not, and cells go through :func:`md_cell`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from conformance.verdicts import STATUSES


def md_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, one line."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def md_code(value: Any) -> str:
    """An inline code span for a table cell (pipes still need escaping in GFM)."""
    text = md_cell(value)
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}"


def transcript_text(transcript: Any) -> str:
    """A transcript (list of lines, or text, or nothing) as one block of text."""
    if transcript is None:
        return ""
    if isinstance(transcript, str):
        return transcript
    return "\n".join(str(line) for line in transcript)


def md_fence(text: str) -> str:
    """A fence longer than any backtick run inside ``text``."""
    longest, run = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


@cache
def environment(kind: str) -> jinja2.Environment:
    """``kind`` is ``"html"`` (autoescaped) or ``"md"``."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=(kind == "html"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        md_cell=md_cell, md_code=md_code, transcript=transcript_text, md_fence=md_fence
    )
    env.globals.update(zip=zip, statuses=STATUSES)
    return env


def render(template: str, **context: Any) -> str:
    """The template file ``template`` rendered with ``context``.

    ``.html.j2`` templates are autoescaped; the others are Markdown and are not.
    """
    kind = "html" if template.endswith(".html.j2") else "md"
    return environment(kind).get_template(template).render(**context)
