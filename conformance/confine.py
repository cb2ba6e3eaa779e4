"""A disposable, confined form of a ``spawn:`` target, for campaigns that
generate every command of the schema.

Fuzzing only the read-only commands misses the crashes that matter most
(``blockdev-reopen``, ``calc-dirty-rate``...), but the other commands can
write files, open sockets or start programs on the host.  Confinement makes
them safe to generate: the server runs under bubblewrap (``bwrap``, Debian's
``bubblewrap``) in private user, mount, PID, IPC, UTS and network
namespaces, sees the host's ``/usr`` and ``/etc`` and its own installation
folder read-only, and can write only a private ``/tmp`` of limited size (and
the harness's scratch folder of a ``{socket}`` target).  Its address space
is capped, and a QEMU system emulator also gets its own seccomp filter
(``-sandbox on``, privilege changes and obsolete system calls denied).
docs/fuzzing.md lists what that allows.

The result is a plain ``spawn:`` target string, so everything downstream
(campaign, findings, replay) handles it like any other.
"""

from __future__ import annotations

import os
import shlex
import shutil

from conformance.transport import (
    DIR_FIELD,
    SOCKET_FIELD,
    TargetError,
    parse_target,
    split_command,
)

#: The confinement program and the Debian package that provides it.
BWRAP = "bwrap"
BWRAP_PACKAGE = "bubblewrap"

#: Address-space cap: QEMU with ``-machine none`` starts in well under 1 GiB
#: of address space; the cap keeps a command that allocates guest RAM from
#: exhausting the host.
ADDRESS_SPACE_LIMIT = 4 << 30
#: Size of the private, writable ``/tmp`` (tmpfs: it costs memory).
SCRATCH_LIMIT = 256 << 20

#: QEMU's own seccomp filter, for system emulators (other programs lack the
#: option).  Spawning and resource control stay allowed: QEMU answers a denied
#: call with SIGSYS, so ``migrate`` to ``exec:`` or a ``thread-context`` with
#: a CPU affinity would die by the confinement and read as crashes.  What such
#: a command starts runs inside the same namespaces.
QEMU_SANDBOX = ("-sandbox", "on,obsolete=deny,elevateprivileges=deny")

#: Host folders seen read-only (Debian's merged /usr makes /bin, /lib... links).
READ_ONLY = ("/usr", "/etc")
USR_LINKS = ("bin", "sbin", "lib", "lib64")


def installation_folders(program: str) -> list[str]:
    """The folders a program outside /usr is installed in (the parent of its
    ``bin/`` or build folder), which it reads its libraries and firmware
    from: that of the path as given and that of the file it links to."""
    given = os.path.abspath(shutil.which(program) or program)
    folders = []
    for path in (given, os.path.realpath(given)):
        folder = os.path.dirname(os.path.dirname(path))
        if not path.startswith("/usr/") and folder != "/" and folder not in folders:
            folders.append(folder)
    return folders


def confine_argv(argv: list[str], *, bwrap: str = BWRAP) -> list[str]:
    """``argv`` run under bubblewrap, with the limits described above."""
    outer = ["prlimit", f"--as={ADDRESS_SPACE_LIMIT}", "--", bwrap]
    outer += ["--unshare-all", "--die-with-parent", "--new-session"]
    for folder in READ_ONLY:
        outer += ["--ro-bind", folder, folder]
    for name in USR_LINKS:
        if os.path.exists(f"/usr/{name}"):
            outer += ["--symlink", f"usr/{name}", f"/{name}"]
    for home in installation_folders(argv[0]):
        outer += ["--ro-bind", home, home]
    outer += ["--dev", "/dev", "--proc", "/proc"]
    outer += ["--size", str(SCRATCH_LIMIT), "--tmpfs", "/tmp"]
    if any(SOCKET_FIELD in a for a in argv):
        # The harness's scratch folder ({dir}, filled in for {socket}
        # targets only) holds the socket it connects to.
        outer += ["--bind", DIR_FIELD, DIR_FIELD, "--chdir", DIR_FIELD]
    else:
        outer += ["--chdir", "/tmp"]
    # The sandbox's own root (bwrap's tmpfs, holding the mount points) is
    # made read-only last: only /tmp and the scratch folder take writes.
    outer += ["--remount-ro", "/"]
    # Absolute: the program is looked for after the change of folder.
    inner = [os.path.abspath(argv[0]) if os.sep in argv[0] else argv[0], *argv[1:]]
    if os.path.basename(argv[0]).startswith("qemu-system-") and "-sandbox" not in argv:
        inner += QEMU_SANDBOX
    return [*outer, "--", *inner]


def confine(spec: str) -> str:
    """The confined form of the ``spawn:`` target ``spec``.

    Raises :class:`TargetError` when ``spec`` is not a ``spawn:`` target, or
    when bubblewrap or prlimit is not installed.
    """
    target = parse_target(spec)
    if target.kind not in ("spawn", "served"):
        raise TargetError(
            f"only a spawn: target can be confined (the harness must start it), not {spec!r}"
        )
    bwrap = shutil.which(BWRAP)
    if bwrap is None:
        raise TargetError(f"confinement needs {BWRAP} (install Debian's {BWRAP_PACKAGE} package)")
    if shutil.which("prlimit") is None:
        raise TargetError("confinement needs prlimit (Debian's util-linux package)")
    argv = confine_argv(split_command(target.command), bwrap=bwrap)
    return "spawn:" + shlex.join(argv)


def confined(spec: str) -> bool:
    """Whether ``spec`` is a target :func:`confine` made: its server runs under
    bubblewrap, which shows it no folder of the harness's but a ``{socket}``
    target's scratch folder."""
    try:
        target = parse_target(spec)
        if target.kind not in ("spawn", "served"):
            return False
        argv = split_command(target.command)
    except TargetError:
        return False
    return len(argv) > 3 and argv[0] == "prlimit" and os.path.basename(argv[3]) == BWRAP
