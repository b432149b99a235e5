#!/usr/bin/env bash
# Builds, starts and stops a real Dagger engine (v0.18.10) on this host, for tests and for the
# local drill on machines without Docker. The engine runs in its own mount and network namespace,
# so the host's network, firewall and resolv.conf stay untouched.
#
#   hack/engine.sh build   build CLI + engine from the Go module proxy (cached by version)
#   hack/engine.sh start   start the engine (idempotent), wait until it answers
#   hack/engine.sh stop    stop it by PID
#   hack/engine.sh env     print the variables that point the SDK and `dagger run` at it
#   hack/engine.sh status  exit 0 when the engine answers
set -euo pipefail

DAGGER_VERSION=v0.18.10
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/deploydrill"
BIN="$CACHE/dagger/$DAGGER_VERSION/bin"
RUN="$CACHE/engine"
STATE="$CACHE/engine-state"
SOCK="$RUN/engine.sock"
PIDFILE="$RUN/engine.pid"

LOG_NAME=engine
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"
die() { log "$*"; exit 1; }

need_packages() {
  local missing=()
  for p in runc iptables dnsmasq-base containernetworking-plugins iproute2 ca-certificates util-linux; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    [[ $EUID -eq 0 ]] || die "missing Debian packages (${missing[*]}): install them as root"
    log "installing ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# distconsts is a nested module that the module zip leaves out and that was never tagged; the
# build needs a module of that path holding only these constants.
write_distconsts() {
  mkdir -p "$1"
  cat >"$1/go.mod" <<'MOD'
module github.com/dagger/dagger/engine/distconsts

go 1.22
MOD
  cat >"$1/consts.go" <<'GO'
package distconsts

const (
	EngineContainerName   = "dagger-engine.dev"
	DefaultEngineSockAddr = "unix:///run/dagger/engine.sock"
)

const (
	RuncPath       = "/usr/local/bin/runc"
	DaggerInitPath = "/usr/local/bin/dagger-init"

	EngineDefaultStateDir = "/var/lib/dagger"

	EngineContainerBuiltinContentDir   = "/usr/local/share/dagger/content"
	GoSDKManifestDigestEnvName         = "DAGGER_GO_SDK_MANIFEST_DIGEST"
	PythonSDKManifestDigestEnvName     = "DAGGER_PYTHON_SDK_MANIFEST_DIGEST"
	TypescriptSDKManifestDigestEnvName = "DAGGER_TYPESCRIPT_SDK_MANIFEST_DIGEST"
)

const (
	AlpineVersion = "3.21.3"
	AlpineImage   = "alpine:" + AlpineVersion
	GolangVersion = "1.24.4"
	GolangImage   = "golang:" + GolangVersion + "-alpine"
	BusyboxVersion = "1.37.0"
	BusyboxImage   = "busybox:" + BusyboxVersion
)

const OCIVersionAnnotation = "org.opencontainers.image.version"
GO
}

build() {
  if [[ -x "$BIN/dagger-engine" && -x "$BIN/dagger" && -x "$BIN/dagger-init" && -x "$BIN/dnsname" ]]; then
    return 0
  fi
  local t0=$SECONDS
  log "building dagger $DAGGER_VERSION from the Go module proxy (cold: ~3 min on 2 cores), into $BIN"
  export GOFLAGS=-mod=mod GONOSUMDB=github.com/dagger/dagger,github.com/dagger/buildkit
  local src work
  src=$(go mod download -json "github.com/dagger/dagger@$DAGGER_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [[ -d "$src" ]] || die "download github.com/dagger/dagger@$DAGGER_VERSION: no source dir"
  work="$CACHE/dagger/$DAGGER_VERSION/src"
  rm -rf "$work"; mkdir -p "$work"
  cp -r "$src/." "$work/"; chmod -R u+w "$work"
  write_distconsts "$work/engine/distconsts"
  (
    cd "$work"
    go mod edit \
      -dropreplace dagger.io/dagger -replace "dagger.io/dagger=dagger.io/dagger@$DAGGER_VERSION" \
      -replace github.com/goproxy/goproxy=github.com/goproxy/goproxy@v0.26.0
    step "downloading the engine's modules" go mod download
    local ld="-X github.com/dagger/dagger/engine.Version=$DAGGER_VERSION -X github.com/dagger/dagger/engine.Tag=$DAGGER_VERSION"
    mkdir -p "$BIN.tmp"
    step "compiling dagger-engine (1 of 4, the longest)" go build -ldflags "$ld" -o "$BIN.tmp/dagger-engine" ./cmd/engine
    step "compiling the dagger CLI (2 of 4)" go build -ldflags "$ld" -o "$BIN.tmp/dagger" ./cmd/dagger
    # dagger-init is bind-mounted into every container: it must not need glibc.
    CGO_ENABLED=0 step "compiling dagger-init (3 of 4)" go build -ldflags "$ld" -o "$BIN.tmp/dagger-init" ./cmd/init
    step "compiling dnsname (4 of 4)" go build -ldflags "$ld" -o "$BIN.tmp/dnsname" ./cmd/dnsname
  )
  rm -rf "$BIN"; mv "$BIN.tmp" "$BIN"
  rm -rf "$work"
  log "built in $((SECONDS - t0)) s"
}

engine_pid() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && cat "$PIDFILE"; }

answers() { DAGGER_NO_NAG=1 DO_NOT_TRACK=1 _EXPERIMENTAL_DAGGER_RUNNER_HOST="unix://$SOCK" \
  timeout 20 "$BIN/dagger" core version >/dev/null 2>&1; }

start() {
  need_packages
  build
  if engine_pid >/dev/null; then log "already running (pid $(engine_pid))"; return 0; fi
  mkdir -p "$RUN" "$STATE" "$RUN/usrlocalbin" "$RUN/cni"
  rm -f "$SOCK"
  # The engine expects runc, dagger-engine and dagger-init under /usr/local/bin (hard-coded paths).
  cp -f "$BIN/dagger-engine" "$BIN/dagger-init" "$RUN/usrlocalbin/"
  cp -f "$(command -v runc)" "$RUN/usrlocalbin/runc"
  for p in bridge loopback firewall host-local; do cp -f "/usr/lib/cni/$p" "$RUN/cni/"; done
  cp -f "$BIN/dnsname" "$RUN/cni/"
  cat >"$RUN/engine.toml" <<TOML
debug = false
[grpc]
  address = ["unix://$SOCK"]
TOML
  cat >"$RUN/inner.sh" <<INNER
#!/usr/bin/env bash
# Runs inside the engine's own mount and network namespace.
set -euo pipefail
ip link set lo up
# Keep a handle on the host's cgroup tree, then give this network namespace a fresh sysfs (else
# the engine panics sampling netstats) and put the cgroup tree back on top.
mkdir -p "$RUN/cgroup"
mount --rbind /sys/fs/cgroup "$RUN/cgroup"
mount -t sysfs sysfs /sys
mount --rbind "$RUN/cgroup" /sys/fs/cgroup
mount -t tmpfs tmpfs /run
mount --bind "$RUN/usrlocalbin" /usr/local/bin
exec /usr/local/bin/dagger-engine --config "$RUN/engine.toml" --root "$STATE" --oci-cni-binary-dir "$RUN/cni"
INNER
  chmod +x "$RUN/inner.sh"
  log "starting (log: $RUN/engine.log)"
  setsid unshare --mount --net --propagation private --fork "$RUN/inner.sh" >"$RUN/engine.log" 2>&1 </dev/null &
  local unshare_pid=$!
  local child=""
  for _ in $(seq 1 50); do
    child=$(pgrep -P "$unshare_pid" 2>/dev/null | head -1 || true)
    [[ -n "$child" ]] && break
    sleep 0.1
  done
  [[ -n "$child" ]] || die "engine did not start: $(tail -5 "$RUN/engine.log")"
  # unshare --fork ignores SIGTERM while it waits: the engine is its child, stop that.
  echo "$child" >"$PIDFILE"
  local deadline=$((SECONDS + 60))
  until [[ -S "$SOCK" ]] && answers; do
    kill -0 "$child" 2>/dev/null || die "engine exited: $(tail -20 "$RUN/engine.log")"
    ((SECONDS < deadline)) || die "engine did not answer within 60s: $(tail -5 "$RUN/engine.log")"
    sleep 0.2
  done
  log "up (pid $child, socket $SOCK)"
}

stop() {
  local pid
  pid=$(engine_pid) || { log "not running"; rm -f "$PIDFILE"; return 0; }
  kill -TERM "$pid"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" == Z* ]] && break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && [[ "$(ps -o stat= -p "$pid")" != Z* ]] && kill -KILL "$pid"
  rm -f "$PIDFILE" "$SOCK"
  log "stopped (pid $pid)"
}

print_env() {
  cat <<ENV
export _EXPERIMENTAL_DAGGER_CLI_BIN=$BIN/dagger
export _EXPERIMENTAL_DAGGER_RUNNER_HOST=unix://$SOCK
export DAGGER_ENGINE_PID=$(engine_pid || true)
export DO_NOT_TRACK=1
export DAGGER_NO_NAG=1
export PATH=$BIN:\$PATH
ENV
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  status) engine_pid >/dev/null && answers ;;
  *) echo "usage: $0 build|start|stop|env|status" >&2; exit 2 ;;
esac
