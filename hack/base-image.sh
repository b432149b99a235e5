#!/usr/bin/env bash
# Makes the project's own Python base image from Debian packages, for machines that cannot pull
# python:3.12-slim (no registry reachable). Output: a docker-format image tarball that
# `go run ./ci --base-image <path>` takes. Cached; rebuilt only when missing.
#
#   hack/base-image.sh          print the tarball's path (building it first if needed)
set -euo pipefail

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/deploydrill"
OUT="$CACHE/base/python-bookworm.tar"
PACKAGES=python3,python3-pip,python3-flask,gunicorn,python3-pytest,ca-certificates,passwd

LOG_NAME=base-image
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

if [[ -s "$OUT" ]]; then echo "$OUT"; exit 0; fi

if ! command -v mmdebstrap >/dev/null; then
  log "installing mmdebstrap"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap >/dev/null
fi

# The mirror comes from this machine's own apt configuration, never from this repo.
sources=()
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
  [[ -s "$f" ]] && { sources=("$f"); break; }
done

work=$(mktemp -d "$CACHE/base.XXXXXX" 2>/dev/null || { mkdir -p "$CACHE"; mktemp -d "$CACHE/base.XXXXXX"; })
trap 'rm -rf "$work"' EXIT
step "debootstrapping bookworm with $PACKAGES (~1 min)" mmdebstrap --quiet --variant=minbase --include="$PACKAGES" \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --aptopt='Acquire::Languages "none"' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  bookworm "$work/rootfs.tar" "${sources[@]}"
mkdir -p "$(dirname "$OUT")"
(cd "$(dirname "$0")/.." && step "packing the image" go run ./hack/baseimage -rootfs "$work/rootfs.tar" -out "$OUT.tmp" -tag deploydrill/python-base:bookworm)
mv "$OUT.tmp" "$OUT"
log "wrote $OUT"
echo "$OUT"
