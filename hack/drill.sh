#!/usr/bin/env bash
# The main job on a fresh machine of this project's kind (no Docker, no registry reachable):
# prepares the engine and the offline base image, then runs the whole drill on the local target.
# Extra arguments go to the drill, e.g. hack/drill.sh --live 10s --outage 10s --recovery 10s
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(hack/setup.sh)"
exec go run ./ci "$@"
