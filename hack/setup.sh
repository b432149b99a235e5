#!/usr/bin/env bash
# Prepares this machine for the local drill and the test suite: Debian packages, the Dagger
# engine (built once, cached outside the repo), and the offline Python base image.
# Idempotent: a warm rerun takes seconds. Prints the environment to eval.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(git runc iptables dnsmasq-base containernetworking-plugins iproute2 ca-certificates util-linux
  mmdebstrap openssh-server docker.io containerd busybox-static procps python3-flask python3-pytest sudo haproxy)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  [[ $EUID -eq 0 ]] || { echo "setup: missing Debian packages (${missing[*]}); install them as root" >&2; exit 1; }
  echo "$(date +%H:%M:%S) setup: installing ${missing[*]}" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's docker.io and ssh packages start host daemons on install where systemd runs; the lab
# runs its own inside network namespaces, so these are not needed and stay as they are.

hack/engine.sh start
base=$(hack/base-image.sh)
hack/engine.sh env
echo "export DRILL_TEST_BASE_IMAGE=$base"
echo "export DRILL_BASE_IMAGE=\"${DRILL_BASE_IMAGE:-$base}\""
