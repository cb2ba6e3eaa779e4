"""Real QEMU releases fetched by ``scripts/fetch-releases.sh``, as targets.

The script leaves one folder per release (``5.2``, ``7.2``, ``10.0``) with a
``bin/`` of launchers and a ``PACKAGE`` file holding the Debian version.  This
module turns each server program of a release into the target string that
runs it the way the project's gate and tests run it, so the command lines are
written once.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Where the releases are unless QMP_CONFORM_RELEASES says otherwise.
DEFAULT_DIR = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "qmp-conformance"
    / "releases"
)

#: Each server program and how it serves QMP: the system emulator on its stdio
#: (a fresh process per connection), the storage daemon and the guest agent on
#: a socket the harness chooses (one process for the run).
SERVERS: dict[str, str] = {
    "qemu-system-x86_64": "{bin} -machine none -nodefaults -display none -qmp stdio",
    "qemu-storage-daemon": "{bin} --chardev socket,path={socket},server=on,wait=off,id=m0 "
    "--monitor chardev=m0",
    "qemu-ga": "{bin} -m unix-listen -p {socket} -t {dir} -f {dir}/qga.pid",
}


@dataclass(frozen=True)
class Release:
    """One fetched release: its name (``7.2``), folder and Debian version."""

    name: str
    path: Path
    package: str

    def binary(self, program: str) -> Path:
        """The path of ``program``'s launcher in this release (it may not exist)."""
        return self.path / "bin" / program

    def target(self, program: str) -> str:
        """The target string that runs ``program`` of this release.  Raises
        :class:`KeyError` for a program :data:`SERVERS` does not know."""
        command = SERVERS[program].replace("{bin}", shlex.quote(str(self.binary(program))))
        return f"spawn:{command}"

    def targets(self) -> Iterator[tuple[str, str]]:
        """(program, target) for every server program the release has."""
        for program in SERVERS:
            if os.access(self.binary(program), os.X_OK):
                yield program, self.target(program)


def directory() -> Path:
    """Where the fetched releases are: ``$QMP_CONFORM_RELEASES``, else :data:`DEFAULT_DIR`."""
    return Path(os.environ.get("QMP_CONFORM_RELEASES") or DEFAULT_DIR)


def _key(name: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in name.split("."))


def available(base: Path | None = None) -> list[Release]:
    """The fetched releases, oldest first; empty when none was fetched."""
    root = base or directory()
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        package = folder / "PACKAGE"
        if folder.is_dir() and package.is_file() and (folder / "bin").is_dir():
            found.append(Release(folder.name, folder, package.read_text().strip()))
    return sorted(found, key=lambda r: _key(r.name))
