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
    def copy_pipe_k(x, y, n, BLOCK: tl.constexpr, STAGES: tl.constexpr):  # type: ignore[no-untyped-def]
        pid, nprog = tl.program_id(0), tl.num_programs(0)
        for start in tl.range(pid * BLOCK, n, nprog * BLOCK, num_stages=STAGES):
            offs = start + tl.arange(0, BLOCK)
            m = offs < n
            tl.store(y + offs, tl.load(x + offs, mask=m, eviction_policy="evict_first"),
                     mask=m, cache_modifier=".cs")

    @triton.jit  # type: ignore[untyped-decorator]
    def copy_tma_k(x, y, rows, COLS: tl.constexpr, BM: tl.constexpr):  # type: ignore[no-untyped-def]
        pid, nprog = tl.program_id(0), tl.num_programs(0)
        xd = tl.make_tensor_descriptor(x, shape=[rows, COLS], strides=[COLS, 1],
                                       block_shape=[BM, COLS])
        yd = tl.make_tensor_descriptor(y, shape=[rows, COLS], strides=[COLS, 1],
                                       block_shape=[BM, COLS])
        for r in tl.range(pid * BM, rows, nprog * BM, num_stages=3):
            yd.store([r, 0], xd.load([r, 0]))

    return {"copy": copy_k, "pipe": copy_pipe_k, "tma": copy_tma_k}


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
    return float(statistics.median(out))


def main() -> None:  # noqa: PLR0915 - one search, read top to bottom
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--read-sweep", action="store_true",
                    help="also the passes-in-one-launch read over 1 MiB..4 GiB")
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
    for block, warps, grid_mult, stages in itertools.product(
            (2048, 4096, 8192), (4, 8, 16), (1, 2, 4, 8), (2, 3, 4)):
        grid = (grid_mult * sms,)
        try:
            t = _time(torch, lambda grid=grid, block=block, warps=warps, stages=stages:
                      k["pipe"][grid](x, y, n, BLOCK=block, STAGES=stages, num_warps=warps),
                      a.repeats)
        except Exception as exc:  # noqa: BLE001 - a variant that does not compile is skipped
            print(json.dumps({"v": "pipe", "block": block, "error": str(exc)[:200]}))
            continue
        ok = torch.equal(x[:1000], y[:1000])
        y.zero_()
        print(json.dumps({"v": "pipe", "block": block, "warps": warps, "grid_x_sm": grid_mult,
                          "stages": stages, "TBps": moved / t / 1e12, "ok": ok}), flush=True)
    try:
        triton.set_allocator(lambda size, align, stream: torch.empty(  # noqa: ARG005
            size, dtype=torch.int8, device="cuda"))
        cols = 256
        rows = n // cols
        for bm, warps, grid_mult in itertools.product((16, 32, 64), (4, 8), (1, 2, 4)):
            t = _time(torch, lambda bm=bm, warps=warps, g=grid_mult * sms:
                      k["tma"][(g,)](x, y, rows, COLS=cols, BM=bm, num_warps=warps), a.repeats)
            ok = torch.equal(x[:1000], y[:1000])
            y.zero_()
            print(json.dumps({"v": "tma", "bm": bm, "warps": warps, "grid_x_sm": grid_mult,
                              "TBps": 2 * rows * cols * 4 / t / 1e12, "ok": ok}), flush=True)
    except Exception as exc:  # noqa: BLE001
        print(json.dumps({"v": "tma", "error": str(exc)[:300]}), flush=True)
    for block, warps, grid_mult, cs, unroll in itertools.product(
            (2048, 4096), (8, 16), (0,), (True,), (1, 2)):
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
    from kernels_bench.hbm_triton import cache_read

    for p in range(20, 33) if a.read_sweep else ():
        size = 1 << p
        passes = max(1, (1 << 30) // size)
        for grid_mult in (2, 4, 8):
            t = _time(torch, cache_read(x[:size // 4], passes, grid_mult * sms), a.repeats)
            print(json.dumps({"v": "read-passes", "size": size, "passes": passes,
                              "grid_x_sm": grid_mult, "TBps": size * passes / t / 1e12}),
                  flush=True)


if __name__ == "__main__":
    main()
