"""Two workers share one Redis example database; a second run (another
machine, in effect) replays the failures the first one stored."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fuzz.conftest import cli

DEFECT = "reference:defect=id-stringified"


def test_workers_share_redis_and_a_second_run_replays(
    reference: str, redis_url: str, tmp_path: Path
) -> None:
    import redis

    first = cli(
        "fuzz",
        "--target",
        DEFECT,
        "--workers",
        "2",
        "--duration",
        "12",
        "--db",
        redis_url,
        "--out",
        str(tmp_path / "a"),
        "--seed",
        "2",
        "--quiet",
        timeout=150,
    )
    assert first.returncode == 1, first.stderr
    found = json.loads(first.stdout)
    assert found["workers"] == 2 and found["findings"] >= 1
    client = redis.Redis.from_url(redis_url)
    keys = client.keys(b"hypothesis-example:*")
    assert keys, "nothing was stored in Redis"

    # Another machine: nothing generated, only the shared database replayed.
    second = cli(
        "fuzz",
        "--target",
        DEFECT,
        "--db-only",
        "--duration",
        "60",
        "--db",
        redis_url,
        "--out",
        str(tmp_path / "b"),
        "--quiet",
        timeout=150,
    )
    assert second.returncode == 1, second.stderr
    replayed = json.loads(second.stdout)
    assert replayed["findings"] >= 1
    assert set(Path(p).name for p in replayed["finding_files"]) & set(
        Path(p).name for p in found["finding_files"]
    )

    # The control: the same replay-only run over an empty database finds nothing.
    empty = redis_url.rsplit("/", 1)[0] + "/1"
    control = cli(
        "fuzz",
        "--target",
        DEFECT,
        "--db-only",
        "--duration",
        "60",
        "--db",
        empty,
        "--out",
        str(tmp_path / "c"),
        "--quiet",
        timeout=150,
    )
    assert control.returncode == 0, control.stdout + control.stderr
    assert json.loads(control.stdout)["findings"] == 0
