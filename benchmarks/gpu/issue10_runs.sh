#!/bin/bash
# Issue 10 on the H200, one device call: the GPU-marked tests (copy vs GEMM under the GPU
# collector), then `servescope run --collect gpu,stacks` around transformers serve with a small
# and a larger random-weight model under 64 streams, each run directory packed into $OUT.
#   bash benchmarks/gpu/issue10_runs.sh            (on the device machine, .whl carried)
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee $OUT/device.txt
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a $OUT/device.txt
date -u +%FT%TZ >> $OUT/device.txt
timeout 150 python3 -m pytest -q -m gpu tests/gpu -p no:cacheprovider -s 2>&1 | tail -40 > $OUT/pytest_gpu.txt
python3 benchmarks/gpu/make_tiny_model.py /tmp/small --hidden 1024 --layers 8 | tail -1 | tee -a $OUT/device.txt
python3 benchmarks/gpu/make_tiny_model.py /tmp/large --hidden 4096 --layers 16 --heads 32 --kv-heads 8 | tail -1 | tee -a $OUT/device.txt
for m in small large; do
  timeout 200 python3 -m profiler.cli run --out /tmp/runs/$m --collect metrics,gpu,stacks \
    --concurrency 64 --requests 256 --input-len fixed:64 --output-len fixed:128 \
    -- transformers serve /tmp/$m --continuous-batching --port 8000 --host 127.0.0.1 \
    > $OUT/run_$m.txt 2>&1
  echo "rc=$?" >> $OUT/run_$m.txt
  python3 -m profiler.cli analyze /tmp/runs/$m --json /tmp/runs/$m/analysis.json >> $OUT/run_$m.txt 2>&1
  (cd /tmp/runs && tar czf $OUT/run_$m.tgz $m)
done
python3 -m profiler.cli report /tmp/runs/small /tmp/runs/large --out /tmp/runs/ab.html > $OUT/ab.txt 2>&1; cp /tmp/runs/ab.html $OUT/ 2>/dev/null
tail -30 $OUT/run_small.txt; tail -12 $OUT/run_large.txt; cat $OUT/pytest_gpu.txt | tail -8
