#!/usr/bin/env bash
# Prepares this machine for the local drill (and, with --test, for the test suite): Debian
# packages, the Dagger engine (built once, cached outside the repo) and the offline Python base
# image, the two long builds side by side. Idempotent: a warm rerun takes seconds. Prints the
# environment to eval; progress goes to stderr.
#
#   hack/setup.sh           what the drill needs
#   hack/setup.sh --test    also what the tests need (the netns lab's sshd, dockerd, HAProxy, sudo;
#                           Debian's Flask and pytest for the app's tests outside Dagger)
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

# The drill: the engine's runtime (runc, iptables, dnsmasq, CNI plugins, namespaces), the base
# image's maker (mmdebstrap), git for the commit SHA, procps and iproute2 for the local faults.
PACKAGES=(git runc iptables dnsmasq-base containernetworking-plugins iproute2 ca-certificates util-linux
  mmdebstrap procps)
if [[ "${1:-}" == --test ]]; then
  PACKAGES+=(openssh-server docker.io containerd sudo haproxy python3-flask python3-pytest)
fi

log() { printf '%s setup: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  [[ $EUID -eq 0 ]] || { log "missing Debian packages (${missing[*]}); install them as root"; exit 1; }
  log "installing ${#missing[@]} Debian packages: ${missing[*]}"
  apt-get update -q >/dev/null
  # Debian's docker.io and ssh packages start host daemons on install where systemd runs; the lab
  # runs its own inside network namespaces, so these are not needed and stay as they are.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  log "packages installed ($((SECONDS - started)) s)"
fi

# The two long builds of a cold machine side by side: the engine from the Go module proxy and
# the base image from Debian's packages. Each logs its own progress.
hack/engine.sh build &
engine_build=$!
base=$(hack/base-image.sh) || { wait "$engine_build" || true; exit 1; }
wait "$engine_build"
hack/engine.sh start
hack/engine.sh env
echo "export DRILL_TEST_BASE_IMAGE=$base"
echo "export DRILL_BASE_IMAGE=\"${DRILL_BASE_IMAGE:-$base}\""
log "ready in $((SECONDS - started)) s"
