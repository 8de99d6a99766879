"""File names and the schema version of a run directory."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BENCH_BANDWIDTH_FILE",
    "BENCH_DIR",
    "BENCH_ENVIRONMENT_FILE",
    "BENCH_REPEATS_FILE",
    "EVENTS_FILE",
    "GPM_FILE",
    "GPU_DEVICES_FILE",
    "GPU_DIR",
    "GPU_PROCESSES_FILE",
    "GPU_SAMPLES_FILE",
    "HANGS_FILE",
    "JOURNAL_DIR",
    "KERNELS_DIR",
    "KERNEL_ANNOTATIONS_FILE",
    "KERNEL_CPU_OPS_FILE",
    "KERNEL_FLOWS_FILE",
    "KERNEL_GPU_FILE",
    "KERNEL_HOOK_DIR",
    "KERNEL_RAW_DIR",
    "KERNEL_RUNTIME_FILE",
    "KERNEL_TRACES_FILE",
    "KERNEL_WINDOW_FILE",
    "MANIFEST_FILE",
    "OTEL_DIR",
    "OTEL_EXPORTED_FILE",
    "OTEL_RECEIVER_FILE",
    "OTEL_SPANS_FILE",
    "OTEL_SPANS_JOURNAL",
    "REQUESTS_FILE",
    "RESERVE_FILE",
    "SCHEMA_VERSION",
    "STACKS_DIR",
    "STACK_HOT_FILE",
    "STACK_PROCESSES_FILE",
    "STACK_THREADS_FILE",
    "RunDirError",
    "journal_path",
]

SCHEMA_VERSION = 2  # 2: typed sections (client, gpus, engine, imported); 1 is converted on read
MANIFEST_FILE = "manifest.json"
JOURNAL_DIR = "journal"  # per-worker append-only JSONL, written while the run goes on
REQUESTS_FILE = "requests.parquet"
EVENTS_FILE = "events.parquet"
RESERVE_FILE = ".reserve"  # room kept for the end of a run on a disk that fills up
# the GPU collector's (servescope/records/gpu.py)
GPU_DIR = "gpu"
GPU_DEVICES_FILE = "gpu/devices.json"
GPU_SAMPLES_FILE = "gpu/samples.parquet"
GPM_FILE = "gpu/gpm.parquet"
GPU_PROCESSES_FILE = "gpu/processes.parquet"
# the stack collector's (servescope/records/stacks.py)
STACKS_DIR = "stacks"
STACK_PROCESSES_FILE = "stacks/processes.json"
STACK_THREADS_FILE = "stacks/threads.parquet"
STACK_HOT_FILE = "stacks/hot.parquet"
HANGS_FILE = "stacks/hangs.json"
# the kernel-trace ingestion's (servescope/records/kernels.py)
KERNELS_DIR = "kernels"
KERNEL_GPU_FILE = "kernels/gpu.parquet"  # kernels, memcpy, memset
KERNEL_RUNTIME_FILE = "kernels/runtime.parquet"  # cudaLaunchKernel, cudaGraphLaunch, ...
KERNEL_CPU_OPS_FILE = "kernels/cpu_ops.parquet"
KERNEL_ANNOTATIONS_FILE = "kernels/annotations.parquet"  # record_function ranges
KERNEL_FLOWS_FILE = "kernels/flows.parquet"
KERNEL_TRACES_FILE = "kernels/traces.parquet"  # one row per ingested trace file
KERNEL_WINDOW_FILE = "kernels/window.json"  # the profiler window the kernels collector took
KERNEL_RAW_DIR = "kernels/raw"  # the trace files the engine (or the hook) wrote
KERNEL_HOOK_DIR = "kernels/hook"  # the in-process hook's private channel (mode 0700)

# kernels_bench's (servescope/records/bandwidth.py; docs/kernels_bench.md)
BENCH_DIR = "bench"
BENCH_BANDWIDTH_FILE = "bench/bandwidth.parquet"  # one BandwidthSample per bench, impl, size
BENCH_REPEATS_FILE = "bench/repeats.parquet"  # every timed repeat behind each sample
BENCH_ENVIRONMENT_FILE = "bench/environment.json"  # peaks, topology, transports, settings

OTEL_DIR = "otel"
OTEL_SPANS_JOURNAL = "otel/spans.jsonl"  # spans as received (append only, during the run)
OTEL_SPANS_FILE = "otel/spans.parquet"  # servescope.records.spans.SpanRecord, one row a span
OTEL_RECEIVER_FILE = "otel/receiver.json"  # the receiver's endpoint and counts
OTEL_EXPORTED_FILE = "otel/exported.json"  # --otlp-endpoint: what the live export sent


class RunDirError(Exception):
    """A run directory that cannot be read or written, with a message for the user."""


def journal_path(run_dir: Path, worker_id: int) -> Path:
    return run_dir / JOURNAL_DIR / f"worker-{worker_id}.jsonl"
