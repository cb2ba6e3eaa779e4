"""Schema errors: one line, ``file:line: message``, never a traceback."""

from __future__ import annotations

from conformance.errors import ConformanceError
from conformance.qapi.model import SourceInfo


class QAPIError(ConformanceError):
    """A schema that cannot be read, parsed or checked."""

    def __init__(self, info: SourceInfo | str | None, message: str) -> None:
        self.info = info
        self.message = message
        super().__init__(f"{info}: {message}" if info else message)


class QAPISyntaxError(QAPIError):
    """A lexical or grammatical error; the loader may retry in lenient mode.

    It names the column too (``file:line:col: message``), counting from 1
    with tabs stopping every 8 columns, as compilers do.
    """

    def __init__(self, info: SourceInfo | str | None, message: str, column: int = 0) -> None:
        self.column = column
        super().__init__(f"{info}:{column}" if info and column else info, message)
        self.info = info
