"""The Hypothesis example database of a campaign.

``--db PATH`` (default ``OUT/hypothesis-db``) is a
:class:`~hypothesis.database.DirectoryBasedExampleDatabase`;
``--db redis://HOST:PORT/DB`` is Hypothesis's own
:class:`~hypothesis.extra.redis.RedisExampleDatabase`, so workers on
several machines save their failing examples in one place and every
campaign starts by replaying all of them.

The database is wrapped so that it never *forgets*: a campaign stops
failing on a bug it has already recorded (to keep exploring), and plain
Hypothesis would then delete the example as "no longer failing", taking it
away from the other machines too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from urllib.parse import urlparse

from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from conformance.errors import ConformanceError

#: The key every campaign files its examples under (stable across workers,
#: machines and runs of the same code; see qmp-and-qapi.md §6.3).
KEY = b"qmp-conform-fuzz-campaign-v1"


class DatabaseError(ConformanceError):
    """The database cannot be opened (a usage error in the CLI)."""


class KeepingDatabase(ExampleDatabase):
    """Saves and fetches through ``db``; ignores deletes and moves."""

    def __init__(self, db: ExampleDatabase) -> None:
        super().__init__()
        self.wrapped = db

    def __repr__(self) -> str:
        return f"KeepingDatabase({self.wrapped!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeepingDatabase) and self.wrapped == other.wrapped

    def __hash__(self) -> int:
        return hash(("keeping", id(self.wrapped)))

    def fetch(self, key: bytes) -> Iterable[bytes]:
        """The values the wrapped database holds under ``key``; a Redis database
        lets :class:`redis.RedisError` through when the server is unreachable."""
        yield from self.wrapped.fetch(key)

    def save(self, key: bytes, value: bytes) -> None:
        """Save ``value`` under ``key`` in the wrapped database; a Redis database
        lets :class:`redis.RedisError` through when the server is unreachable."""
        self.wrapped.save(key, value)

    def delete(self, key: bytes, value: bytes) -> None:
        """Do nothing: an example this campaign stopped failing on stays for others."""
        pass

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        """Save ``value`` under ``dest`` as well, leaving it under ``src``; a Redis
        database lets :class:`redis.RedisError` through when unreachable."""
        self.wrapped.save(dest, value)

    def _start_listening(self) -> None:
        pass

    def _stop_listening(self) -> None:
        pass


def open_database(spec: str) -> ExampleDatabase:
    """``redis://HOST:PORT/DB`` or a folder path (created when missing), wrapped
    so that it never forgets an example.

    Raises :class:`DatabaseError` when the redis package is missing, the
    database is not a number or Redis cannot be reached, and :class:`OSError`
    when the folder cannot be created.
    """
    if spec.startswith("redis://"):
        url = urlparse(spec)
        try:
            import redis
            from hypothesis.extra.redis import RedisExampleDatabase
        except ImportError as exc:
            raise DatabaseError(f"{spec}: the redis package is not installed ({exc})") from exc
        db_number = (
            int(url.path.strip("/") or 0)
            if url.path.strip("/").isdigit() or not url.path.strip("/")
            else -1
        )
        if db_number < 0:
            raise DatabaseError(f"{spec}: the database must be a number (redis://HOST:PORT/0)")
        client = redis.Redis(
            host=url.hostname or "127.0.0.1",
            port=url.port or 6379,
            db=db_number,
            socket_timeout=5,
            socket_connect_timeout=5,
        )
        try:
            client.ping()
        except redis.RedisError as exc:
            raise DatabaseError(f"{spec}: cannot reach Redis: {exc}") from exc
        return KeepingDatabase(RedisExampleDatabase(client))
    os.makedirs(spec, exist_ok=True)
    return KeepingDatabase(DirectoryBasedExampleDatabase(spec))
