"""Shared constants of the harness tests (imported by plain name)."""

from __future__ import annotations

import shutil

import pytest

QEMU = shutil.which("qemu-system-x86_64")
QEMU_STDIO = "qemu-system-x86_64 -machine none -nodefaults -display none -qmp stdio"
needs_qemu = pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not installed")
