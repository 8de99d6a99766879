#!/usr/bin/env bash
# The kernel-receive-timestamp benchmarks of docs/benchmarks.md §10, each cell under
# /tmp/bench.lock and only once the 1-minute load average is below 1.5 (waits up to 10 min,
# then runs anyway and the JSON records the load it saw; QUIET_TRIES=N waits N x 10 s, RUNS="1"
# runs one round). Usage:
#   bash benchmarks/kernel_stamps_matrix.sh [DATE]
set -u
cd "$(dirname "$0")/.."
day=${1:-$(date -u +%F)}
out=benchmarks/results
py=.venv/bin/python
quiet() {
  for _ in $(seq "${QUIET_TRIES:-60}"); do
    awk '{exit !($1 < 1.5)}' /proc/loadavg && return
    sleep 10
  done
}
cell() {  # name args...
  local name=$1; shift
  quiet
  flock /tmp/bench.lock timeout 600 $py benchmarks/kernel_stamps.py "$@" \
    --out "$out/kernel-stamps-$day-$name.json" > /dev/null || echo "cell $name failed"
}
for run in ${RUNS:-1 2}; do
  cell "s64-r$run" --streams 64 --requests 640
  cell "s128-r$run" --streams 128 --requests 1280
  cell "s64-burst-r$run" --streams 64 --requests 640 --burst
  cell "zero-s256-r$run" --streams 256 --requests 2560 --zero-cost --events 256
done
