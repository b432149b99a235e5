#!/usr/bin/env bash
# The whole test suite on a fresh machine of this project's kind: sets up the engine, the base
# image and the lab's packages, then runs every Go test (the app's pytest suite runs inside the
# image through the pipeline's Test stage, which the Go tests exercise).
set -euo pipefail
cd "$(dirname "$0")/.."

started_engine=false
hack/engine.sh status || started_engine=true
eval "$(hack/setup.sh)"
if $started_engine && [[ "${KEEP_ENGINE:-}" != 1 ]]; then trap 'hack/engine.sh stop' EXIT; fi

echo "$(date +%H:%M:%S) test: go vet" >&2
go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go'))
[[ -z "$unformatted" ]] || { echo "gofmt needed: $unformatted" >&2; exit 1; }

echo "$(date +%H:%M:%S) test: app tests outside Dagger (Debian's python3-flask and python3-pytest)" >&2
(cd app && /usr/bin/python3 -m pytest -q -p no:cacheprovider tests)

echo "$(date +%H:%M:%S) test: go test" >&2
# -count=1: integration tests read files through Dagger, which go's test cache cannot see.
go test -count=1 -timeout 25m "$@" ./...
