#!/bin/bash
# Each collector's cost on transformers serve on the H200 (benchmarks/collector_arms.py).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
python3 benchmarks/gpu/make_tiny_model.py /tmp/small --hidden 1024 --layers 8 2>&1 | tail -1
mkdir -p /tmp/arms; timeout 270 python3 benchmarks/collector_arms.py --engine transformers --model /tmp/small \
  --arms none,gpu,stacks,gpu+stacks --reps 2 --duration 10 --concurrency 32 \
  --device "NVIDIA H200 (driver 580.159.04)" --out /tmp/arms/arms-h200.json \
  -- transformers serve /tmp/small --continuous-batching --port 8000 --host 127.0.0.1
cp /tmp/arms/arms-h200.json /tmp/arms/arms-h200.md $OUT/; cat /tmp/arms/arms-h200.md
