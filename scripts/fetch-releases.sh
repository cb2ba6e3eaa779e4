#!/usr/bin/env bash
# Fetch the QEMU releases the suite is verified on, beside the system's own.
#
#   bash scripts/fetch-releases.sh [DIR]
#
# DIR (default: $QMP_CONFORM_RELEASES, else ~/.cache/qmp-conformance/releases)
# gets one folder per release: `root/` holds the unpacked Debian packages,
# `bin/` one launcher per server binary (qemu-system-x86_64,
# qemu-storage-daemon, qemu-ga, qemu-img) and `PACKAGE` the Debian version.
# The system's own QEMU (Debian 12's 7.2, installed by scripts/test.sh) gets
# launchers too, so every release is used the same way.
#
# The packages come through a private apt configuration: its own sources list
# (the Debian mirror the system already uses, with the bullseye and
# bookworm-backports suites), state and cache under DIR/.apt.  The system's
# sources, its package lists and the dpkg lock are never touched, so this runs
# beside apt and without installing anything.  Safe to run again: a release
# whose folder is complete for the wanted version is left as it is.
set -euo pipefail

DIR="${1:-${QMP_CONFORM_RELEASES:-${XDG_CACHE_HOME:-$HOME/.cache}/qmp-conformance/releases}}"
ARCH="$(dpkg --print-architecture)"
TRIPLET="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "${ARCH/amd64/x86_64}-linux-gnu")"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# release | suite | Debian version | packages (the servers, their modules, the
# libraries the release needs that Debian 12 lacks)
RELEASES=(
  "5.2|bullseye|1:5.2+dfsg-11+deb11u3|qemu-system-x86 qemu-system-common qemu-system-gui qemu-block-extra qemu-utils qemu-guest-agent|libxenmisc4.14 libxenstore3.0 libxentoolcore1 libxencall1 libxendevicemodel1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxentoollog1 libxenhypfs1 libvirglrenderer1 liburing1"
  "10.0|bookworm-backports|1:10.0.2+ds-2+deb13u1~bpo12+1|qemu-system-x86 qemu-system-common qemu-system-gui qemu-block-extra qemu-system-modules-opengl qemu-system-modules-spice qemu-utils qemu-guest-agent|"
)
SERVERS=(qemu-system-x86_64 qemu-storage-daemon qemu-ga qemu-img)

die() { echo "fetch-releases: $*" >&2; exit 2; }

mkdir -p "$DIR"
APT="$DIR/.apt"

# The mirror the system already uses for Debian (not its security archive).
mirror() {
    local uri
    uri="$(apt-get indextargets --format '$(REPO_URI)' 'Identifier: Packages' 2>/dev/null \
           | grep -v -- '-security' | head -n 1 || true)"
    [ -n "$uri" ] || die "no Debian mirror in the system's apt sources (run 'apt-get update' once)"
    echo "$uri"
}

apt_private() {
    local tool="$1"; shift
    "$tool" -q \
        -o Dir::Etc="$APT/etc" -o Dir::Etc::sourcelist="$APT/etc/sources.list" \
        -o Dir::Etc::sourceparts="$APT/etc/sources.list.d" \
        -o Dir::Etc::preferencesparts="$APT/etc/preferences.d" \
        -o Dir::State="$APT/state" -o Dir::State::status="$APT/state/status" \
        -o Dir::Cache="$APT/cache" -o Debug::NoLocking=1 \
        -o APT::Architecture="$ARCH" -o Acquire::Languages=none \
        -o APT::Sandbox::User="$(id -un)" "$@"
}

prepare_apt() {
    mkdir -p "$APT/etc/sources.list.d" "$APT/etc/preferences.d" \
             "$APT/state/lists/partial" "$APT/cache/archives/partial"
    : > "$APT/state/status"
    local uri suites
    uri="$(mirror)"
    suites="$(for r in "${RELEASES[@]}"; do IFS='|' read -r _ suite _ <<<"$r"; echo "$suite"; done | sort -u)"
    : > "$APT/etc/sources.list"
    for suite in $suites; do
        echo "deb [signed-by=$KEYRING] $uri $suite main" >> "$APT/etc/sources.list"
    done
    apt_private apt-get update >/dev/null || die "apt-get update of the private sources failed"
}

# A launcher runs the release's binary with its own libraries and modules
# first: without QEMU_MODULE_DIR a release would load the system's modules.
write_launcher() {
    local root="$1" name="$2" out="$3" binary=""
    for d in usr/bin usr/sbin; do
        [ -x "$root/$d/$name" ] && binary="$root/$d/$name" && break
    done
    [ -n "$binary" ] || die "$name is missing from $root"
    cat > "$out" <<EOF
#!/bin/sh
export LD_LIBRARY_PATH="$root/usr/lib/$TRIPLET\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export QEMU_MODULE_DIR="$root/usr/lib/$TRIPLET/qemu"
exec "$binary" "\$@"
EOF
    chmod +x "$out"
}

fetch_release() {
    local release="$1" suite="$2" version="$3" packages="$4" libs="$5"
    local dest="$DIR/$release"
    if [ -f "$dest/PACKAGE" ] && [ "$(cat "$dest/PACKAGE")" = "$version" ]; then
        echo "-- QEMU $release: $version (already here)"
        return
    fi
    [ -f "$APT/state/lists/.ready" ] || { prepare_apt; touch "$APT/state/lists/.ready"; }
    echo "-- QEMU $release: fetching $version from $suite"
    rm -rf "$dest"
    mkdir -p "$dest/debs" "$dest/root" "$dest/bin"
    local wanted=()
    for p in $packages; do wanted+=("$p=$version"); done
    # shellcheck disable=SC2206
    wanted+=($libs)
    (cd "$dest/debs" && apt_private apt-get download "${wanted[@]}" >/dev/null) \
        || die "apt-get download failed for QEMU $release"
    for deb in "$dest"/debs/*.deb; do dpkg -x "$deb" "$dest/root"; done
    rm -rf "$dest/debs"
    for name in "${SERVERS[@]}"; do write_launcher "$dest/root" "$name" "$dest/bin/$name"; done
    echo "$version" > "$dest/PACKAGE"
}

# The system's QEMU, as installed from Debian 12.
system_release() {
    local version
    version="$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)"
    [ -n "$version" ] || { echo "-- system QEMU: not installed, skipped"; return; }
    local release
    release="$(echo "$version" | sed -E 's/^[0-9]+://; s/^([0-9]+\.[0-9]+).*/\1/')"
    local dest="$DIR/$release"
    mkdir -p "$dest/bin"
    for name in "${SERVERS[@]}"; do
        local binary
        binary="$(command -v "$name" || true)"
        [ -n "$binary" ] || [ ! -x "/usr/sbin/$name" ] || binary="/usr/sbin/$name"
        [ -n "$binary" ] || die "$name of the system's QEMU is not installed"
        printf '#!/bin/sh\nexec "%s" "$@"\n' "$binary" > "$dest/bin/$name"
        chmod +x "$dest/bin/$name"
    done
    echo "$version" > "$dest/PACKAGE"
    echo "-- QEMU $release: $version (the system's)"
}

system_release
for r in "${RELEASES[@]}"; do
    IFS='|' read -r release suite version packages libs <<<"$r"
    fetch_release "$release" "$suite" "$version" "$packages" "$libs"
done
