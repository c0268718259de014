#!/usr/bin/env bash
# The CPU benchmark behind docs/performance.md: 1 km² and 2 km² cities (and 4x each),
# JSON figures into bench/. Takes about 15 minutes on 2 cores.
#   scripts/bench_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench
for area in 1 2; do
  .venv/bin/baseline bench --area-km2 "$area" --device cpu --json "bench/cpu-${area}km2.json" --quiet
done
