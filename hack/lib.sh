# Shared by the hack/ scripts: progress lines on stderr. Source it after setting LOG_NAME.

log() { printf '%s %s: %s\n' "$(date +%H:%M:%S)" "$LOG_NAME" "$*" >&2; }

# step WHAT CMD...: runs CMD, saying every 30 s that WHAT is still under way and how long it has
# taken, then how long it took in all (a cold machine's long steps are not silent).
step() {
  local what=$1; shift
  local t0=$SECONDS
  log "$what"
  # On stderr: a heartbeat's last sleep must not hold a caller's $(...) open.
  ( while sleep 30; do log "… $what: $((SECONDS - t0)) s so far"; done ) >&2 &
  local beat=$!
  local rc=0
  "$@" || rc=$?
  kill "$beat" 2>/dev/null; wait "$beat" 2>/dev/null || true
  ((rc == 0)) && log "$what: done in $((SECONDS - t0)) s" || log "$what: failed after $((SECONDS - t0)) s"
  return "$rc"
}
