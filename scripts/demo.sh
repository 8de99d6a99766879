#!/usr/bin/env bash
# The README's main job on a fresh machine: install servescope into .venv, then profile the
# embedded default target and print where the results are.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e .
out=${1:-runs/demo-$(date +%Y%m%d-%H%M%S)}
# Until the real-engine target is wired in, the demo profiles the loopback reference server.
.venv/bin/python -m profiler.selftest.serve --port 0 --ttft-ms 30 --itl-ms 8 --output-tokens 128 \
  > .servescope-demo-server.txt 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f .servescope-demo-server.txt' EXIT
for _ in $(seq 100); do grep -q REFSERVER_URL .servescope-demo-server.txt 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^REFSERVER_URL=//p' .servescope-demo-server.txt)
.venv/bin/servescope attach --url "$url" --concurrency 16 --requests 200 --out "$out"
