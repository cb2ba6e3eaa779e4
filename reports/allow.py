"""Allow files: breaking changes a project has accepted, so CI gates on new ones only.

Format (documented in docs/compatibility.md): one path pattern per line;
``#`` starts a comment (whole line, or after whitespace); blank lines are
ignored.  A pattern matches a change's whole path; ``*`` matches any run of
characters, everything else is literal (paths contain ``[`` and ``|``, so
fnmatch's character classes would misread them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from conformance.errors import ConformanceError
from reports.diff import Change


class AllowFileError(ConformanceError, ValueError):
    """An allow file that cannot be read."""


@dataclass(frozen=True)
class AllowList:
    """The patterns of one allow file, each matched against a change's whole path."""

    patterns: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> AllowList:
        """The allow list in ``text``: one pattern a line, comments and blank lines dropped."""
        patterns = []
        for line in text.splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            if line:
                patterns.append(line)
        return cls(tuple(patterns))

    @classmethod
    def read(cls, path: str) -> AllowList:
        """The allow list in the file at ``path``.

        Raises :class:`AllowFileError` when the file cannot be read or is not UTF-8.
        """
        try:
            return cls.parse(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise AllowFileError(f"{path}: can't read allow file: {exc}") from None

    def _regex(self) -> re.Pattern[str]:
        alternatives = (".*".join(re.escape(part) for part in p.split("*")) for p in self.patterns)
        return re.compile("(?:" + "|".join(alternatives) + ")\\Z" if self.patterns else "(?!)")

    def allows(self, path: str) -> bool:
        """Whether some pattern matches the whole of ``path``."""
        return self._regex().match(path) is not None

    def unallowed(self, changes: Iterable[Change]) -> list[Change]:
        """The changes no pattern matches, in their order: the ones a gate should fail on."""
        regex = self._regex()
        return [c for c in changes if regex.match(c.path) is None]

    def unused(self, changes: Iterable[Change]) -> list[str]:
        """Patterns that matched nothing (stale entries worth deleting)."""
        paths = [c.path for c in changes]
        return [p for p in self.patterns if not any(AllowList((p,)).allows(x) for x in paths)]
