"""A run with every source the Perfetto export draws, at times the tests chose: 40 requests
20 ms apart (overlapping: each lasts 40–70 ms; request 3 fails), engine scrapes every 100 ms
with chosen KV usage, the GPU and stacks of ``_gpu_runs`` and two kernel traces ingested with
a clock anchor that puts the traces' first event at 100 ms of the run's clock: the real
vLLM-CPU capture (rank 0: CPU ops and 34 step annotations) and the hand-made GPU trace of the
ingestion tests (rank 1: kernels, a CUDA-graph replay, memcpy, memset, flows)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from collectors.kernels import ingest_traces
from servescope.clock import ClockAnchor
from servescope.rundir.reader import RunData, load_run
from tests.analyzers._gate_runs import add_engine, synthetic_run, vllm_page
from tests.analyzers._rundir import ns
from tests.collectors.kernels._traces import BASE_NS, T0_US, VLLM_CPU, gpu_events, write_trace
from tests.reports._gpu_runs import write_gpu, write_stacks

N = 40
GAP_MS = 20.0
FAILED = (3,)
KERNELS_AT_MS = 100.0
SCRAPES_MS = [float(t) for t in range(0, 900, 100)]
KV_USAGE = [0.05 * (i + 1) for i in range(len(SCRAPES_MS))]


def ttfts_ms() -> list[float]:
    return [20.0 + (i % 5) * 7.0 for i in range(N)]


def kernel_anchor() -> ClockAnchor:
    """The first event of both traces (ts = T0_US) lands at KERNELS_AT_MS of the run."""
    return ClockAnchor(mono_ns=ns(KERNELS_AT_MS),
                       wall_ns=BASE_NS + int(Decimal(str(T0_US)) * 1000))


def client_run(root: Path, name: str = "plain") -> RunData:
    """The requests alone: no engine, GPU, stacks or kernels."""
    return synthetic_run(root, name, ttfts_ms(), 5.0, tokens=8, gap_ms=GAP_MS, failed=FAILED)


def full_run(root: Path, name: str = "full") -> RunData:
    run = client_run(root, name)
    add_engine(run, [(t, vllm_page(ttft_buckets={0.1: i}, kv_usage=kv, preemptions=0))
                     for i, (t, kv) in enumerate(zip(SCRAPES_MS, KV_USAGE, strict=True))])
    write_gpu(run.path, gpus=2)
    write_stacks(run.path)
    gpu_trace = write_trace(
        root / f"{name}_gpu.pt.trace.json.gz", gpu_events(),
        header={"schemaVersion": 1, "baseTimeNanoseconds": BASE_NS,
                "distributedInfo": {"backend": "nccl", "rank": 1, "world_size": 2}})
    ingest_traces([VLLM_CPU, gpu_trace], run.path, kernel_anchor())
    return load_run(run.path)
