"""The root of every error the tool reports to its user.

Anything raised as a :class:`ConformanceError` (an unreachable target, a
schema that does not load, a bad baseline, results or finding file, a wrong
option) is a problem with what the user asked for, not a finding and not a
bug: the command line prints its first line and exits with status 2, in one
place (:func:`conformance.cli.main`).  Findings are verdicts, never
exceptions; anything else that escapes is a bug in the tool and keeps its
traceback.
"""

from __future__ import annotations


class ConformanceError(Exception):
    """A problem with the user's input or environment (exit status 2)."""

    def brief(self) -> str:
        """The first line of the message, which is what the CLI prints."""
        return (str(self).splitlines() or [type(self).__name__])[0]
