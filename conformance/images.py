"""Disk images through QEMU's own tools (``qemu-img``, ``qemu-io``, Debian's qemu-utils).

The job checks make real images with known data for a target to stream and
snapshot, then read them back; the reference server, which has no block
layer, lets the same tools do to its image files what its jobs stand for
(a stream rebases the top image, a snapshot job saves, applies or deletes
an internal snapshot).  One place knows how to call them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

#: Generous: a tool on a loaded machine, on images of a few MiB.
TIMEOUT = 60.0


class ImageError(RuntimeError):
    """A tool failed or is missing; the message carries what it printed."""


def available() -> bool:
    """Whether both tools are installed."""
    return shutil.which("qemu-img") is not None and shutil.which("qemu-io") is not None


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageError(f"{argv[0]}: {exc}") from exc
    if done.returncode != 0:
        raise ImageError(f"{' '.join(argv)}: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def qemu_img(*args: str) -> str:
    """Run ``qemu-img ARGS``; its output.  Raises :class:`ImageError` when it fails."""
    return _run(["qemu-img", *args])


def qemu_io(path: str, fmt: str, *commands: str, read_only: bool = False) -> str:
    """Run ``qemu-io`` commands on an image; the output.  A pattern that does not
    match fails the run.  Raises :class:`ImageError` when a command fails."""
    argv = ["qemu-io", "-f", fmt, *(["-r"] if read_only else [])]
    for command in commands:
        argv += ["-c", command]
    out = _run([*argv, path])
    # qemu-io exits 0 after a failed command; its report says so.
    for line in out.splitlines():
        if "failed" in line.lower() or "error" in line.lower():
            raise ImageError(f"qemu-io {' '.join(commands)} on {path}: {line.strip()}")
    return out


def info(path: str) -> dict[str, Any]:
    """``qemu-img info`` of an image, as JSON.  Raises :class:`ImageError`."""
    value: dict[str, Any] = json.loads(qemu_img("info", "-U", "--output=json", path))
    return value
