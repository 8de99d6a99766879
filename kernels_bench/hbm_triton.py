"""Triton streaming kernels: read, write, copy, triad (GPU; needs the ``kernels`` extra).

Each program walks blocks ``pid, pid + nprog, ...`` of ``BLOCK`` elements: with one program
per block (the plain grid) that is one block each; with a persistent grid (a few programs per
SM) each keeps looping, so fewer programs keep as many bytes in flight. Contiguous offsets and
16-byte alignment let Triton issue 128-bit loads and stores; ``evict_first`` marks streamed
loads and stores are streaming (``.cs``: on the H200, copy 3.90 → 4.10 TB/s,
``benchmarks/gpu/hbm_tune.py``). The read kernel stores one float per program (``nprog x 4``
bytes, counted as noise).

``cache_read`` is the size sweep's kernel: ``PASSES`` passes over the array inside one launch,
loads cached in L2 only (``.cg``: each program rereads its own blocks, which L1 would
otherwise serve), so an array that fits in L2 is read from L2 and the per-launch cost is
spread over ``passes x size`` bytes; one per-call timing cannot show L2 at all (1 MiB read in
one launch: ~0.5 TB/s, the launch's own cost).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

__all__ = ["cache_read", "launcher", "triton_kernels"]

_SCALAR = 3.0


@cache
def _jit() -> dict[str, Any]:
    import triton
    import triton.language as tl

    @triton.jit  # type: ignore[untyped-decorator]
    def read_k(x, out, n, BLOCK: tl.constexpr):  # type: ignore[no-untyped-def]
        pid, nprog = tl.program_id(0), tl.num_programs(0)
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(pid * BLOCK, n, nprog * BLOCK):
            offs = start + tl.arange(0, BLOCK)
            acc += tl.load(x + offs, mask=offs < n, other=0.0,
                           eviction_policy="evict_first").to(tl.float32)
        tl.store(out + pid, tl.sum(acc, axis=0))

    @triton.jit  # type: ignore[untyped-decorator]
    def write_k(y, n, value, BLOCK: tl.constexpr):  # type: ignore[no-untyped-def]
        pid, nprog = tl.program_id(0), tl.num_programs(0)
        for start in range(pid * BLOCK, n, nprog * BLOCK):
            offs = start + tl.arange(0, BLOCK)
            tl.store(y + offs, tl.full([BLOCK], value, y.dtype.element_ty), mask=offs < n,
                     cache_modifier=".cs")

    @triton.jit  # type: ignore[untyped-decorator]
    def copy_k(x, y, n, BLOCK: tl.constexpr, LOAD_CG: tl.constexpr):  # type: ignore[no-untyped-def]
        pid, nprog = tl.program_id(0), tl.num_programs(0)
        for start in range(pid * BLOCK, n, nprog * BLOCK):
            offs = start + tl.arange(0, BLOCK)
            m = offs < n
            if LOAD_CG:  # cached in L2 only
                v = tl.load(x + offs, mask=m, cache_modifier=".cg")
            else:
                v = tl.load(x + offs, mask=m, eviction_policy="evict_first")
            tl.store(y + offs, v, mask=m, cache_modifier=".cs")

    @triton.jit  # type: ignore[untyped-decorator]
    def triad_k(a, b, c, n, s, BLOCK: tl.constexpr):  # type: ignore[no-untyped-def]  # noqa: PLR0917
        pid, nprog = tl.program_id(0), tl.num_programs(0)
        for start in range(pid * BLOCK, n, nprog * BLOCK):
            offs = start + tl.arange(0, BLOCK)
            m = offs < n
            bv = tl.load(b + offs, mask=m, eviction_policy="evict_first")
            cv = tl.load(c + offs, mask=m, eviction_policy="evict_first")
            tl.store(a + offs, bv + s * cv, mask=m, cache_modifier=".cs")

    @triton.jit  # type: ignore[untyped-decorator]
    def cache_read_k(x, out, n, PASSES: tl.constexpr, BLOCK: tl.constexpr):  # type: ignore[no-untyped-def]
        pid, nprog = tl.program_id(0), tl.num_programs(0)
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for _p in range(PASSES):
            for start in range(pid * BLOCK, n, nprog * BLOCK):
                offs = start + tl.arange(0, BLOCK)
                acc += tl.load(x + offs, mask=offs < n, other=0.0, cache_modifier=".cg")
        tl.store(out + pid, tl.sum(acc, axis=0))

    return {"read": read_k, "write": write_k, "copy": copy_k,
            "triad": triad_k,
            "cache_read": cache_read_k}


def cache_read(x: Any, passes: int, programs: int, *, block: int = 4096,
               num_warps: int = 8) -> Callable[[], Any]:
    """A call reading the CUDA float32 tensor ``x`` ``passes`` times in one launch on a grid
    of ``programs`` (module doc)."""
    import torch

    k = _jit()["cache_read"]
    partial = torch.empty(programs, dtype=torch.float32, device=x.device)
    n = x.numel()
    return lambda: k[(programs,)](x, partial, n, PASSES=passes, BLOCK=block,
                                  num_warps=num_warps)


def triton_kernels(a: Any, b: Any, c: Any, *, block: int = 4096, num_warps: int = 8,
                   persistent_programs: int | None = None,
                   configs: Mapping[str, tuple[int, int]] | None = None,
                   copy_loads: str = "evict_first") -> dict[str, Callable[[], Any]]:
    """Calls of the four kernels on same-sized contiguous CUDA tensors ``a`` (written),
    ``b`` and ``c`` (read). ``persistent_programs``: the grid size (None: one program per
    block). ``configs``: (block, num_warps) per op name, overriding ``block``/``num_warps``
    (the search's choice, :func:`kernels_bench.hbm.tune_plain_grid`). ``copy_loads``: the
    copy's loads, ``evict_first`` or ``cg`` (cached in L2 only)."""
    import torch
    import triton

    k = _jit()
    n = a.numel()
    calls: dict[str, Callable[[], Any]] = {}
    for op in ("read", "write", "copy", "triad"):
        blk, warps = (configs or {}).get(op, (block, num_warps))
        blocks = triton.cdiv(n, blk)
        grid = (min(blocks, persistent_programs) if persistent_programs else blocks,)
        kw = {"BLOCK": blk, "num_warps": warps}
        if op == "read":
            partial = torch.empty(grid[0], dtype=torch.float32, device=a.device)
            args: tuple[Any, ...] = (b, partial, n)
        elif op == "write":
            args = (a, n, _SCALAR)
        elif op == "copy":
            args = (b, a, n)
            kw["LOAD_CG"] = copy_loads == "cg"
        else:
            args = (a, b, c, n, _SCALAR)
        calls[op] = launcher(k[op], grid, args, kw)
    return calls


def launcher(kernel: Any, grid: tuple[int, ...], args: tuple[Any, ...],
             kw: dict[str, Any]) -> Callable[[], Any]:
    """A no-argument launch of ``kernel[grid](*args, **kw)``."""
    return lambda: kernel[grid](*args, **kw)
