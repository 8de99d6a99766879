"""Event frames in the kernel schema built by hand (ground truth the tests control), and a
test-only reader of a real torch-profiler Chrome trace into that schema."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pandas as pd

from servescope.records.kernels import TraceEventKind

TRACES = Path(__file__).resolve().parents[2] / "data" / "traces"
VLLM_CPU_TRACE = TRACES / "tinyrun_rank0.1795344569314968630.pt.trace.json.gz"


class Trace:
    """Rows appended one event at a time; ``frame()`` gives the DataFrame."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._corr = 0

    def add(self, kind: TraceEventKind, name: str, t_ns: int, dur_ns: int, *, rank: int = 0,
            device: int = -1, stream: int = -1, corr: int = -1) -> None:
        self.rows.append({"rank": rank, "kind": kind.value, "name": name, "t_start_ns": t_ns,
                          "dur_ns": dur_ns, "device": device, "stream": stream,
                          "correlation_id": corr, "step": -1})

    def step(self, name: str, t_ns: int, dur_ns: int, rank: int = 0) -> None:
        self.add(TraceEventKind.ANNOTATION, name, t_ns, dur_ns, rank=rank)

    def launch(self, name: str, t_ns: int, dur_ns: int, kernel_t_ns: int, kernel_dur_ns: int,
               *, runtime: str = "cudaLaunchKernel", rank: int = 0, stream: int = 7,
               kind: TraceEventKind = TraceEventKind.KERNEL) -> int:
        """A runtime call and the GPU event it launched; returns the correlation id."""
        self._corr += 1
        self.add(TraceEventKind.RUNTIME, runtime, t_ns, dur_ns, rank=rank, corr=self._corr)
        self.add(kind, name, kernel_t_ns, kernel_dur_ns, rank=rank, device=0,
                 stream=stream, corr=self._corr)
        return self._corr

    def kernel(self, name: str, t_ns: int, dur_ns: int, *, corr: int = -1, stream: int = 7,
               device: int = 0, rank: int = 0) -> None:
        self.add(TraceEventKind.KERNEL, name, t_ns, dur_ns, rank=rank, device=device,
                 stream=stream, corr=corr)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


_CATS = {"kernel": TraceEventKind.KERNEL, "gpu_memcpy": TraceEventKind.MEMCPY,
         "gpu_memset": TraceEventKind.MEMSET, "cuda_runtime": TraceEventKind.RUNTIME,
         "cuda_driver": TraceEventKind.RUNTIME, "cpu_op": TraceEventKind.CPU_OP,
         "user_annotation": TraceEventKind.ANNOTATION}


def ns(ts_us: float) -> int:
    return round(ts_us * 1000)


def load_chrome_trace(path: Path, rank: int = 0) -> pd.DataFrame:
    """Every complete ("X") event of a known category, times in ns (µs × 1000, rounded)."""
    with gzip.open(path, "rt") as f:
        doc = json.load(f)
    rows = []
    for e in doc["traceEvents"]:
        kind = _CATS.get(e.get("cat", ""))
        if e.get("ph") != "X" or kind is None:
            continue
        args = e.get("args", {})
        gpu = kind in (TraceEventKind.KERNEL, TraceEventKind.MEMCPY, TraceEventKind.MEMSET)
        rows.append({"rank": rank, "kind": kind.value, "name": e["name"],
                     "t_start_ns": ns(e["ts"]), "dur_ns": ns(e.get("dur", 0)),
                     "device": int(args.get("device", -1)) if gpu else -1,
                     "stream": int(args.get("stream", -1)) if gpu else -1,
                     "correlation_id": int(args.get("correlation", -1)), "step": -1})
    return pd.DataFrame(rows)
