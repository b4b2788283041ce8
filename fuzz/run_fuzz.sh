#!/usr/bin/env bash
# run_fuzz.sh TARGET CORPUS SECONDS: fuzzes from a copy of the seed corpus for SECONDS; a crash
# leaves its input in the work directory, which is printed and kept.
set -euo pipefail
target=$1 corpus=$2 seconds=$3
work=$(mktemp -d /tmp/podium-fuzz-XXXXXX)
mkdir -p "$work/corpus"
cp "$corpus"/* "$work/corpus/"
if (cd "$work" && "$target" -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 corpus) \
    > "$work/log" 2>&1; then
  grep -E "^stat::number_of_executed_units|Done" "$work/log" || true
  rm -rf "$work"
else
  tail -40 "$work/log"
  echo "fuzzing failed; input and log kept in $work" >&2
  exit 1
fi
