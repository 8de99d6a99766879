#!/bin/bash
# Issue 10 on the H200, one device call (~8 min): the GPU-marked tests (copy vs GEMM under the
# GPU collector); `servescope run --collect metrics,gpu,stacks` around transformers serve with a
# small and a larger random-weight model under 64 streams (each run directory packed into
# $OUT); then each collector's cost on that engine (benchmarks/collector_arms.py).
#   bash benchmarks/gpu/issue10_runs.sh            (on the device machine, .whl carried)
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  date -u +%FT%TZ; } > $OUT/device.txt 2>&1
timeout 120 python3 -m pytest -q -s -m gpu -o addopts="" tests/gpu -p no:cacheprovider > $OUT/pytest_gpu.txt 2>&1
echo "pytest rc=$?" >> $OUT/pytest_gpu.txt
python3 benchmarks/gpu/make_tiny_model.py /tmp/small --hidden 1024 --layers 8 2>&1 | tail -1 >> $OUT/device.txt
python3 benchmarks/gpu/make_tiny_model.py /tmp/large --hidden 3072 --layers 12 --heads 24 --kv-heads 8 2>&1 | tail -1 >> $OUT/device.txt
for m in small large; do
  timeout 170 python3 -m profiler.cli run --out /tmp/runs/$m --collect metrics,gpu,stacks \
    --concurrency 64 --requests 256 --input-len fixed:64 --output-len fixed:128 \
    -- transformers serve /tmp/$m --continuous-batching --port 8000 --host 127.0.0.1 \
    > $OUT/run_$m.txt 2>&1
  echo "rc=$?" >> $OUT/run_$m.txt
  python3 -m profiler.cli analyze /tmp/runs/$m --json /tmp/runs/$m/analysis.json >> $OUT/run_$m.txt 2>&1
  (cd /tmp/runs && tar czf $OUT/run_$m.tgz $m)
done
python3 -m profiler.cli report /tmp/runs/small /tmp/runs/large --out /tmp/runs/ab.html > $OUT/ab.txt 2>&1
gzip -c /tmp/runs/ab.html > $OUT/ab.html.gz 2>/dev/null
timeout 200 python3 benchmarks/collector_arms.py --engine transformers --model /tmp/small \
  --arms none,gpu,stacks,gpu+stacks --reps 2 --duration 12 --concurrency 32 \
  --device "NVIDIA H200 (driver 580.159.04)" --out /tmp/arms/arms-h200.json \
  -- transformers serve /tmp/small --continuous-batching --port 8000 --host 127.0.0.1 > $OUT/arms.txt 2>&1
cp /tmp/arms/arms-h200.json $OUT/ 2>/dev/null
tail -5 $OUT/pytest_gpu.txt; grep -E "rc=|bottleneck|\[|launch" $OUT/run_small.txt | head; tail -12 $OUT/arms.txt
