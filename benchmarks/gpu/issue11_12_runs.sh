#!/bin/bash
# Issues 11 and 12 on the H200, two device calls (~5 min each; .whl carried):
#   bash benchmarks/gpu/issue11_12_runs.sh a   kernels_bench's GPU tests and `servescope bench
#       hbm`; the decode-loop GPU tests (eager vs CUDA graph, traces kept for CI) and a large
#       eager and graph decode trace for the HolisticTraceAnalysis benchmark
#   bash benchmarks/gpu/issue11_12_runs.sh b   `servescope run --collect metrics,gpu,kernels
#       --kernels-hook` around transformers serve under 64 streams (run directory packed)
#   bash benchmarks/gpu/issue11_12_runs.sh d   kernels_bench (tuned plain grid) and the run with
#       transformers serve --cb-use-cuda-graph
#   bash benchmarks/gpu/issue11_12_runs.sh e   kernels_bench (after the copy's L2-only loads joined
#       the search and torch's benchmark Timer the checks), and a ~700 k-event eager decode trace
#   bash benchmarks/gpu/issue11_12_runs.sh c   the Triton copy search (hbm_tune.py), kernels_bench's
#       GPU tests and `servescope bench hbm`, after stage b's run again and tests/gpu
# Everything lands in $OUT (at most 8 files come back).
set -u
stage=${1:-a}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
log=$OUT/log_$stage.txt
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv,noheader
  python3 -c "import torch, triton, transformers; print('torch', torch.__version__, 'triton', triton.__version__, 'transformers', transformers.__version__)"
  date -u +%FT%TZ; nproc; } > $log 2>&1
SS="python3 -m profiler.cli"

hbm() {
  timeout 200 python3 -m pytest -q -s -m gpu -o addopts="" -p no:cacheprovider \
    tests/kernels_bench/test_gpu_bench.py >> $OUT/pytest_gpu.txt 2>&1
  echo "kernels_bench pytest rc=$?" >> $OUT/pytest_gpu.txt
  echo "== bench hbm" >> $log
  timeout 100 $SS bench hbm --out /tmp/bench/hbm >> $log 2>&1; echo "bench rc=$?" >> $log
  (cd /tmp/bench && tar czf $OUT/bench_hbm.tgz hbm) 2>> $log
}
tsrun() {  # [name [extra transformers serve flags...]]
  local name=${1:-ts_kernels}; shift 2>/dev/null
  python3 benchmarks/gpu/make_tiny_model.py /tmp/small --hidden 1024 --layers 8 2>&1 | tail -1 >> $log
  timeout 240 python3 -m profiler.cli run --out /tmp/runs/$name \
    --collect metrics,gpu,kernels --kernels-hook --kernel-window 2 \
    --concurrency 64 --requests 640 --input-len fixed:64 --output-len fixed:128 \
    -- transformers serve /tmp/small --continuous-batching --port 8000 --host 127.0.0.1 "$@" \
    > $OUT/$name.txt 2>&1
  echo "rc=$?" >> $OUT/$name.txt
  timeout 60 $SS analyze /tmp/runs/$name --json /tmp/runs/$name/analysis.json >> $OUT/$name.txt 2>&1
  timeout 60 $SS kernels /tmp/runs/$name --json /tmp/runs/$name/kernels.json >> $OUT/$name.txt 2>&1
  du -sh /tmp/runs/$name >> $log
  # the raw profiler traces apart, so the tables come back even if they are large
  (cd /tmp/runs && tar czf $OUT/$name.tgz --exclude=$name/kernels/raw $name \
     && tar czf $OUT/${name}_raw.tgz $name/kernels/raw)
}
if [ "$stage" = e ]; then
  hbm
  timeout 120 python3 benchmarks/gpu/decode_traces.py $OUT --layers 16 --steps 220 --only eager \
    --prefix h200-decode-xl >> $log 2>&1; echo "record rc=$?" >> $log
elif [ "$stage" = d ]; then
  hbm
  tsrun ts_graph --cb-use-cuda-graph
elif [ "$stage" = c ]; then
  tsrun
  timeout 90 python3 -m pytest -q -s -m gpu -o addopts="" -p no:cacheprovider tests/gpu \
    > $OUT/pytest_gpu.txt 2>&1
  echo "tests/gpu pytest rc=$?" >> $OUT/pytest_gpu.txt
  hbm
  timeout 100 python3 benchmarks/gpu/hbm_tune.py > $OUT/hbm_tune.txt 2>&1
elif [ "$stage" = a ]; then
  mkdir -p $OUT/traces
  SERVESCOPE_KEEP_TRACES=$OUT/traces timeout 150 python3 -m pytest -q -s -m gpu -o addopts="" \
    -p no:cacheprovider tests/gpu/test_decode_traces.py > $OUT/pytest_gpu.txt 2>&1
  echo "decode pytest rc=$?" >> $OUT/pytest_gpu.txt
  hbm
  echo "== large decode traces" >> $log
  timeout 120 python3 benchmarks/gpu/decode_traces.py $OUT --layers 16 --steps 100 \
    --prefix h200-decode-large >> $log 2>&1; echo "record rc=$?" >> $log
  for f in $OUT/h200-decode-large-*.json.gz $OUT/traces/*.json.gz; do
    echo "== kernels $f" >> $log; timeout 60 $SS kernels $f >> $log 2>&1
  done
  $SS kernels $OUT/traces/h200-decode-eager.json.gz $OUT/traces/h200-decode-graph.json.gz \
    >> $log 2>&1
else
  timeout 100 python3 -m pytest -q -s -m gpu -o addopts="" -p no:cacheprovider \
    tests/gpu/test_decode_traces.py > $OUT/pytest_gpu.txt 2>&1
  echo "decode pytest rc=$?" >> $OUT/pytest_gpu.txt
  timeout 150 python3 benchmarks/gpu/hbm_tune.py > $OUT/hbm_tune.txt 2>&1
  tsrun
fi
tail -c 3000 $log
