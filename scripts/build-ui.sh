#!/usr/bin/env bash
# Builds the web UI (ui/, TypeScript bundled by esbuild from npm) into build/ui/, where
# `podium server` serves it under /ui/. Running Podium needs no Node.js; building it does.
set -euo pipefail
cd "$(dirname "$0")/../ui"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
mkdir -p ../build/ui
cp dist/index.html dist/style.css dist/app.js dist/app.js.map ../build/ui/
