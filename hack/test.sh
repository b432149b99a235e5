#!/usr/bin/env bash
# The whole test suite on a fresh machine of this project's kind: sets up the engine, the base
# image and the lab's packages, then runs every Go test (the app's pytest suite runs inside the
# image through the pipeline's Test stage, which the Go tests exercise).
#
#   hack/test.sh            everything (what CI's .ci/run runs)
#   hack/test.sh --short    unit tests only: no engine, no lab, no setup (under a minute)
#   hack/test.sh [--short] [go test flags] [packages]   e.g. hack/test.sh -run Fleet ./ci
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

short=false
if [[ "${1:-}" == --short ]]; then short=true; shift; fi

# Each package's go test -timeout: a budget well above its warm time on a 2-core machine, so a
# hang fails with the package's name long before CI's own limit, and growth shows here first.
# Packages not named get the default.
timeouts=(
  -timeout ./ci=30m
  -timeout ./ci/pipeline=30m
  -timeout ./ci/targets/local=30m
  -timeout ./ci/targets/aws=30m
  -timeout ./internal/testenv/awslab=4m
  -timeout ./internal/testenv/lab=4m
  -timeout ./infra/remote=2m
  -default 2m
  # Heavy tests are bounded by the machine-wide test slots (internal/testenv.Slot, DRILL_TEST_SLOTS),
  # not by go test's -parallel (GOMAXPROCS, 2 here); the fault tables run their cases side by side.
  -flags ./ci=-parallel=16
  -flags ./ci/targets/local=-parallel=5
  -flags ./ci/targets/aws=-parallel=5
)

if $short; then
  echo "$(date +%H:%M:%S) test: go vet" >&2
  go vet ./...
  echo "$(date +%H:%M:%S) test: unit tests (-short: no engine, no lab)" >&2
  go run ./hack/gotest "${timeouts[@]}" -default 1m -- -short -count=1 "$@"
  exit
fi

started_engine=false
hack/engine.sh status || started_engine=true
eval "$(hack/setup.sh --test)"
if $started_engine && [[ "${KEEP_ENGINE:-}" != 1 ]]; then trap 'hack/engine.sh stop' EXIT; fi

echo "$(date +%H:%M:%S) test: go vet" >&2
go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go') hack/gotest/*.go)
[[ -z "$unformatted" ]] || { echo "gofmt needed: $unformatted" >&2; exit 1; }

echo "$(date +%H:%M:%S) test: app tests outside Dagger (Debian's python3-flask and python3-pytest)" >&2
(cd app && /usr/bin/python3 -m pytest -q -p no:cacheprovider tests)

echo "$(date +%H:%M:%S) test: go test, one package at a time, two side by side (setup took $((SECONDS - started)) s)" >&2
# -count=1: integration tests read files through Dagger, which go's test cache cannot see.
go run ./hack/gotest "${timeouts[@]}" -- -count=1 "$@"
