#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine, then run them:
# system packages (QEMU 7.2, the guest agent, Redis, Chromium), QEMU 5.2 and
# 10.0.2 from Debian's archives (scripts/fetch-releases.sh), a virtualenv with
# the project and its test extra, lint, types, the CI gate on every server of
# every release, and the test suite.
# Runs as root or through sudo; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# libvirglrenderer1: a display module of QEMU 10.0 links it (Debian 12 has it);
# bubblewrap: confined campaigns (fuzz --confine).
PACKAGES=(python3 python3-venv qemu-system-x86 qemu-utils qemu-guest-agent redis-server chromium bubblewrap
          libvirglrenderer1)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

echo "== QEMU releases"
bash scripts/fetch-releases.sh

VENV="${QMP_CONFORM_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip >/dev/null
"$VENV/bin/pip" install -q -e '.[test]'

echo "== ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy"
"$VENV/bin/mypy"
# The CI gate itself, as a user runs it: the catalogue against the reference
# server in every dialect and against every server program of every fetched
# QEMU release (system emulator, storage daemon, guest agent), judged against
# the built-in known deviations; any unexpected failure, and any known
# deviation that no longer happens (a stale entry), fails CI.
echo "== qmp-conform check"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
mapfile -t real < <("$VENV/bin/qmp-conform" releases --targets)
for target in reference reference:dialect=oob-draft reference:dialect=qmp-1.0 \
              reference:dialect=qga "${real[@]}"; do
    echo "-- $target"
    if ! "$VENV/bin/qmp-conform" check --strict-baseline --target "$target" >"$out" 2>&1; then
        cat "$out"
        exit 1
    fi
    tail -n 1 "$out"
done

echo "== pytest"
# The slowest tests, to keep the run short.
"$VENV/bin/pytest" --durations=15 "$@"
