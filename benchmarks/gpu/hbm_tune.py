"""Triton copy and read variants on one GPU, timed like kernels_bench (CUDA events around each
call, median of many after warm-up), beside torch's copy: the search that chose the settings
of ``kernels_bench/hbm_triton.py``. Prints one JSON line per variant.

    python3 benchmarks/gpu/hbm_tune.py [--gib 2] [--repeats 30]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
from typing import Any


def _kernels() -> dict[str, Any]:
    import triton
    import triton.language as tl

    @triton.jit  # type: ignore[untyped-decorator]
    def copy_k(x, y, n, BLOCK: tl.constexpr, STORE_CS: tl.constexpr,  # type: ignore[no-untyped-def]  # noqa: PLR0917
               UNROLL: tl.constexpr):
        pid, nprog = tl.program_id(0), tl.num_programs(0)
        for start in range(pid * BLOCK * UNROLL, n, nprog * BLOCK * UNROLL):
            for u in tl.static_range(UNROLL):
                offs = start + u * BLOCK + tl.arange(0, BLOCK)
                m = offs < n
                v = tl.load(x + offs, mask=m, eviction_policy="evict_first")
                if STORE_CS:
                    tl.store(y + offs, v, mask=m, cache_modifier=".cs")
                else:
                    tl.store(y + offs, v, mask=m)

    @triton.jit  # type: ignore[untyped-decorator]
    def read_k(x, out, n, PASSES: tl.constexpr, BLOCK: tl.constexpr):  # type: ignore[no-untyped-def]
        pid, nprog = tl.program_id(0), tl.num_programs(0)
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for _p in range(PASSES):
            for start in range(pid * BLOCK, n, nprog * BLOCK):
                offs = start + tl.arange(0, BLOCK)
                acc += tl.load(x + offs, mask=offs < n, other=0.0, cache_modifier=".cg")
        tl.store(out + pid, tl.sum(acc, axis=0))

    return {"copy": copy_k, "read": read_k}


def _time(torch: Any, fn: Any, repeats: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(repeats):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        out.append(s.elapsed_time(e) * 1e-3)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=30)
    a = ap.parse_args()
    import torch
    import triton

    k = _kernels()
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    n = int(a.gib * (1 << 30)) // 4
    x = torch.randn(n, device="cuda")
    y = torch.empty_like(x)
    moved = 2 * n * 4
    t = _time(torch, lambda: y.copy_(x), a.repeats)
    print(json.dumps({"v": "torch-copy", "TBps": moved / t / 1e12}), flush=True)
    for block, warps, grid_mult, cs, unroll in itertools.product(
            (2048, 4096, 8192, 16384), (4, 8, 16), (0, 1, 2, 4, 8), (False, True), (1, 2, 4)):
        if block * unroll > 32768 or (block >= 16384 and warps == 4):
            continue
        blocks = triton.cdiv(n, block * unroll)
        grid = (min(blocks, grid_mult * sms) if grid_mult else blocks,)
        try:
            t = _time(torch, lambda grid=grid, block=block, warps=warps, cs=cs, unroll=unroll:
                      k["copy"][grid](x, y, n, BLOCK=block, STORE_CS=cs, UNROLL=unroll,
                                      num_warps=warps), a.repeats)
        except Exception as exc:  # noqa: BLE001 - a variant that does not compile is skipped
            print(json.dumps({"v": "copy", "block": block, "error": str(exc)[:200]}))
            continue
        ok = torch.equal(x[:1000], y[:1000])
        y.zero_()
        print(json.dumps({"v": "copy", "block": block, "warps": warps, "grid_x_sm": grid_mult,
                          "store_cs": cs, "unroll": unroll, "TBps": moved / t / 1e12, "ok": ok}),
              flush=True)
    part = torch.empty(8 * sms, dtype=torch.float32, device="cuda")
    for p in range(20, 33):
        size = 1 << p
        m = size // 4
        passes = max(1, (1 << 30) // size)
        xs = x[:m]
        for grid_mult in (2, 4, 8):
            t = _time(torch, lambda m=m, passes=passes, xs=xs, g=grid_mult * sms:
                      k["read"][(g,)](xs, part, m, PASSES=passes, BLOCK=4096, num_warps=8),
                      a.repeats)
            print(json.dumps({"v": "read-passes", "size": size, "passes": passes,
                              "grid_x_sm": grid_mult, "TBps": size * passes / t / 1e12}),
                  flush=True)


if __name__ == "__main__":
    main()
