"""A torch-profiler-style Chrome trace of about N events, written like kineto writes it
(indented, one key per line, gzip or plain), for the ingestion benchmark and tests.

Each engine step: a vLLM step annotation on the CPU (``user_annotation``) and its GPU
projection (``gpu_user_annotation``), a few ``cpu_op``s, then either eager launches
(``cudaLaunchKernel`` + its kernel + an ``ac2g`` flow pair, same correlation id) or one
``cudaGraphLaunch`` whose kernels all carry the launch's correlation id (Pitfall 10), and a
device-to-host ``gpu_memcpy``. Deterministic for a given N and seed.

Header as kineto writes it, with what HolisticTraceAnalysis needs to find a rank
(``distributedInfo.rank``, ``deviceProperties``). Correlation ids start at
``first_correlation`` (a server profiled after running a while has CUPTI ids in the
millions; HTA 0.6.1 fails on a trace of more than 32,767 events whose ids all fit int16,
since it downcasts the column and then stores row indices in it).

    python -m benchmarks.trace_gen OUT.pt.trace.json.gz --events 1000000
"""

from __future__ import annotations

import argparse
import gzip
import random
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["generate"]

BASE_NS = 1790857026000000000
_T0_US = 4487542836692.507
_GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1"
_KERNELS = (_GEMM, "void flash_fwd_splitkv_kernel<Flash_fwd_kernel_traits<128, 64>>",
            "void at::native::vectorized_elementwise_kernel<4, at::native::silu>",
            "void vllm::rms_norm_kernel<c10::BFloat16>", "ncclDevKernel_AllReduce_Sum_bf16_RING_LL")


def _event(ph: str, cat: str, name: str, where: tuple[int, int], ts: float,  # noqa: PLR0917
           dur: float | None, args: str) -> str:
    dur_s = f',\n    "dur": {dur:.3f}' if dur is not None else ""
    return (f'  {{\n    "ph": "{ph}", "cat": "{cat}", "name": "{name}", "pid": {where[0]}, '
            f'"tid": {where[1]},\n    "ts": {ts:.3f}{dur_s},\n    "args": {{\n      {args}'
            '\n    }\n  }')


def _step(i: int, t: float, corr: int, rng: random.Random, graph: bool
          ) -> Iterator[tuple[str, float, int]]:
    """Events of step ``i`` starting at ``t`` µs: (text, step end µs, next correlation)."""
    n_k = 8
    step_dur = 400.0 + rng.random() * 50
    name = f"execute_context_0(0)_generation_{4 + i % 3}({4 + i % 3})"
    yield _event("X", "user_annotation", name, (100, 100), t, step_dur,
                 f'"External id": {corr}'), 0, 0
    yield _event("X", "gpu_user_annotation", name, (0, 7), t + 20, step_dur - 30,
                 f'"External id": {corr}'), 0, 0
    cpu_t, gpu_t = t + 2, t + 25
    launches = 1 if graph else n_k
    for j in range(launches):
        yield _event("X", "cpu_op", "aten::mm", (100, 100), cpu_t, 8.0,
                     f'"External id": {corr + j}, "Record function id": 0'), 0, 0
        c = corr + j
        launch = "cudaGraphLaunch" if graph else "cudaLaunchKernel"
        yield _event("X", "cuda_runtime", launch, (100, 100), cpu_t + 1, 5.0,
                     f'"External id": {c}, "cbid": 211, "correlation": {c}'), 0, 0
        yield _event("s", "ac2g", "ac2g", (100, 100), cpu_t + 1, None, "")[:-1].replace(
            '"args": {\n      \n    }', f'"id": {c}, "bp": "e"') + "}", 0, 0
        for k in range(n_k if graph else 1):
            kname = _KERNELS[(j + k) % len(_KERNELS)]
            kdur = 20.0 + rng.random() * 10
            yield _event("X", "kernel", kname, (0, 7), gpu_t, kdur,
                         f'"External id": {c}, "device": 0, "stream": 7, "correlation": {c}, '
                         '"grid": [132, 1, 1], "block": [128, 1, 1], "registers per thread": 168'
                         ), 0, 0
            if k == 0:
                yield _event("f", "ac2g", "ac2g", (0, 7), gpu_t, None, "")[:-1].replace(
                    '"args": {\n      \n    }', f'"id": {c}, "bp": "e"') + "}", 0, 0
            gpu_t += kdur + 2
        cpu_t += 12
    c = corr + launches
    yield _event("X", "gpu_memcpy", "Memcpy DtoH (Device -> Pinned)", (0, 7), gpu_t, 3.0,
                 f'"device": 0, "stream": 7, "correlation": {c}, "bytes": 4096'), 0, 0
    yield "", t + step_dur + 30, c + 1


def generate(out: Path, events: int, *, seed: int = 0, graph_every: int = 2,
             first_correlation: int = 1_000_000) -> int:
    """Write a trace of about ``events`` events (every ``graph_every``-th step a CUDA-graph
    replay); returns the number of events written."""
    rng = random.Random(seed)
    f: IO[str]
    with (gzip.open(out, "wt", encoding="utf-8", compresslevel=6) if out.name.endswith(".gz")
          else open(out, "w", encoding="utf-8")) as f:
        f.write('{\n  "schemaVersion": 1,\n  "deviceProperties": [{"id": 0, "name": '
                '"NVIDIA H200"}],\n  "distributedInfo": {"backend": "nccl", "rank": 0, '
                f'"world_size": 1}},\n  "baseTimeNanoseconds": {BASE_NS},\n'
                '  "traceEvents": [\n')
        written, t, corr, i = 0, _T0_US, first_correlation, 0
        first = True
        while written < events:
            for text, end, nxt in _step(i, t, corr, rng, graph=i % graph_every == 1):
                if text:
                    f.write(("" if first else ",\n") + text)
                    first = False
                    written += 1
                else:
                    t, corr = end, nxt
            i += 1
        f.write('\n  ],\n  "traceName": "generated.json"\n}\n')
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"{generate(args.out, args.events, seed=args.seed)} events -> {args.out}")


if __name__ == "__main__":
    main()
