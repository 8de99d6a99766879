#!/bin/bash
# First device call: what transformers serve accepts of servescope's request body, its flags,
# and one short servescope run against it (no GPU collectors yet). Results under $OUT.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
transformers serve --help > $OUT/serve_help.txt 2>&1
python3 benchmarks/gpu/make_tiny_model.py /tmp/tinyllama 2>&1 | tail -1
( transformers serve /tmp/tinyllama --continuous-batching --port 8000 --host 127.0.0.1 > $OUT/serve.log 2>&1 & echo $! > /tmp/serve.pid )
for i in $(seq 120); do curl -sf http://127.0.0.1:8000/health >/dev/null && break; sleep 1; done
echo "ready after $i s"
B='"model":"/tmp/tinyllama","prompt":"the quick","max_tokens":8,"stream":true'
for extra in '' ',"stream_options":{"include_usage":true}' ',"stream_options":{"include_usage":true,"continuous_usage_stats":true}' ',"ignore_eos":true'; do
  echo "== body extra: $extra"; curl -sN -w '\nHTTP %{http_code}\n' http://127.0.0.1:8000/v1/completions -H 'content-type: application/json' -d "{$B$extra}" | tail -c 700
done > $OUT/bodies.txt 2>&1
kill -INT $(cat /tmp/serve.pid); sleep 4
python3 -m profiler.cli run --out /tmp/r1 --concurrency 8 --requests 32 --input-len fixed:32 --output-len fixed:32 -- transformers serve /tmp/tinyllama --continuous-batching --port 8000 --host 127.0.0.1 > $OUT/run1.txt 2>&1; echo "run rc=$?" >> $OUT/run1.txt
ls -R /tmp/r1 >> $OUT/run1.txt 2>&1
tail -5 $OUT/run1.txt; head -c 3000 $OUT/bodies.txt
