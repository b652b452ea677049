#!/usr/bin/env bash
# Builds the hedger image without reaching any image registry, and without pip inside the
# build touching the network:
#   1. the base image: used if present; else, for a hedger-base:* name and with debootstrap
#      available (root), a minimal Debian bookworm with python3 + python3-venv is
#      debootstrap'ed from the apt mirror, trimmed and `docker import`ed under that name;
#   2. wheels/: every wheel requirements.lock pins for CPython 3.11 / manylinux x86_64,
#      downloaded on the host and checked against the lock's hashes, plus a wheel of the
#      project (built with SOURCE_DATE_EPOCH = the HEAD commit's time);
#   3. the classic builder: DOCKER_BUILDKIT=0 docker build --build-arg BASE_IMAGE=... .
#
# Environment (defaults):
#   IMAGE=hedger:dev  BASE_IMAGE=hedger-base:bookworm  PYTHON=python3 (must be 3.11: pip
#   evaluates the lock's markers against the interpreter it runs on)
#   DEBIAN_SUITE=bookworm  DEBIAN_MIRROR=http://deb.debian.org/debian
#   SKIP_WHEELS=1 reuses wheels/ as it is.  Extra arguments go to `docker build`.
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=${IMAGE:-hedger:dev}
BASE_IMAGE=${BASE_IMAGE:-hedger-base:bookworm}
PYTHON=${PYTHON:-python3}
DEBIAN_SUITE=${DEBIAN_SUITE:-bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PY_VERSION=3.11

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build-image: %s\n' "$*" >&2; exit 1; }

docker info >/dev/null 2>&1 || die "docker daemon not reachable (start it: dockerd --storage-driver=vfs &)"

# ---- 1. base image -------------------------------------------------------------------------
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "base image $BASE_IMAGE present"
elif [[ $BASE_IMAGE == hedger-base:* ]] && command -v debootstrap >/dev/null && [[ $(id -u) == 0 ]]; then
    rootfs=$(mktemp -d /tmp/hedger-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    # mktemp makes the directory 0700, and it becomes the image's "/": a non-root user
    # could then reach nothing (not even /bin/sh).
    chmod 0755 "$rootfs"
    log "debootstrap $DEBIAN_SUITE (minbase + python3, python3-venv) from $DEBIAN_MIRROR"
    debootstrap --variant=minbase --include=python3,python3-venv \
        "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >/tmp/hedger-debootstrap.log 2>&1 \
        || die "debootstrap failed: see /tmp/hedger-debootstrap.log"
    # Slim: no package cache or lists (apt-get update restores them), docs, man pages or
    # translations; python3's own files are untouched.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
        "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log \
        "$rootfs"/var/log/apt/* "$rootfs"/tmp/* "$rootfs"/root/.cache
    "$rootfs"/usr/bin/python3 --version >/dev/null 2>&1 || chroot "$rootfs" python3 --version >/dev/null \
        || die "no python3 in the debootstrap'ed root"
    log "docker import -> $BASE_IMAGE"
    tar --numeric-owner -C "$rootfs" -c . | docker import \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' \
        --message "debootstrap --variant=minbase --include=python3,python3-venv $DEBIAN_SUITE" \
        - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
else
    die "base image $BASE_IMAGE is not present and cannot be made here (needs a hedger-base:* name, root and debootstrap; or docker pull/load it)"
fi

# ---- 2. wheels -----------------------------------------------------------------------------
if [[ ${SKIP_WHEELS:-} == 1 ]]; then
    log "SKIP_WHEELS=1: using wheels/ as it is ($(ls wheels/*.whl 2>/dev/null | wc -l) wheels)"
else
    [[ $("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') == "$PY_VERSION" ]] \
        || die "$PYTHON is not Python $PY_VERSION: the lock's markers (numpy, scipy, contourpy) would pick the wrong pins; set PYTHON"
    rm -f wheels/*.whl
    # --platform lists every manylinux glibc level a bookworm (glibc 2.36) base can load.
    platforms=()
    for minor in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
    platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
    log "pip download: requirements.lock (hash-checked) for cp311 manylinux x86_64 -> wheels/"
    "$PYTHON" -m pip download --quiet --disable-pip-version-check \
        --only-binary=:all: --require-hashes -r requirements.lock -d wheels/ \
        --python-version "$PY_VERSION" --implementation cp --abi "cp${PY_VERSION/./}" \
        "${platforms[@]}"
    log "project wheel -> wheels/"
    out=$(mktemp -d /tmp/hedger-wheel.XXXXXX)
    export SOURCE_DATE_EPOCH
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
    uv=$(command -v .tools/bin/uv uv 2>/dev/null | head -n1 || true)
    if [[ -n $uv ]]; then
        "$uv" build --quiet --wheel --out-dir "$out" .
    else
        "$PYTHON" -m pip wheel --quiet --no-deps . -w "$out"
    fi
    mv "$out"/hedger-*.whl wheels/
    rm -rf "$out"
fi
ls wheels/hedger-*.whl >/dev/null 2>&1 || die "no project wheel in wheels/"

# ---- 3. image ------------------------------------------------------------------------------
log "docker build -> $IMAGE (base $BASE_IMAGE)"
DOCKER_BUILDKIT=0 docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" "$@" .
docker images "$IMAGE"
