#!/usr/bin/env bash
# Sets up this machine, builds Podium and starts a one-machine cluster in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
DATA_DIR=${PODIUM_DATA_DIR:-$PWD/.podium}
exec ./build/podium server --data-dir "$DATA_DIR" "$@"
