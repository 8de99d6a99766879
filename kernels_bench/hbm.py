"""HBM bandwidth on one GPU: Triton read/write/copy/triad (plain and persistent grid), torch's
own ops, cudaMemcpy device-to-device, and the paged-KV gather, against both peaks.

Timing: CUDA events around each call after warm-up (timing.time_cuda_events), ``repeats``
calls per size; sizes sweep from inside the L2 (50 MiB on H100/H200) to far past it, so the
table shows the cache/HBM transition. Bytes as STREAM counts them (formulas.MemOp).

Implementations: ``triton`` (one program per block), ``triton-persistent`` (4 programs per
SM), ``torch`` (``b.sum()``, ``a.fill_()``, ``torch.add(b, c, alpha=s, out=a)``; for copy
``a.copy_(b)``, which ATen runs as ``cudaMemcpyAsync`` device-to-device for contiguous
same-dtype tensors: that is the cudaMemcpy D2D figure, recorded as ``torch-memcpy``).

The **check** (environment ``checks``): each Triton figure at the largest size is re-timed
independently twice and its bandwidth compared with the per-call median (each must agree
within 3 %): one CUDA event pair around a loop of ``repeats`` calls (launch gaps amortized,
``agree_frac``), and torch's own benchmark timer, ``torch.utils.benchmark.Timer``'s
``blocked_autorange`` (host wall clock with ``torch.cuda.synchronize`` around blocks of
calls: another clock and another harness, ``torch_timer_agree_frac``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kernels_bench.formulas import MemOp, mem_moved_bytes
from kernels_bench.kv_gather import DEFAULT_KV_BATCHES, KvShape, kv_gather_case
from kernels_bench.peaks import DevicePeaks, device_peaks
from kernels_bench.results import BenchRun, make_sample
from kernels_bench.timing import time_cuda_events

__all__ = ["DEFAULT_HBM_SIZES", "HbmSettings", "run_hbm_bench", "tune_plain_grid"]

DEFAULT_HBM_SIZES = tuple(1 << p for p in range(20, 33))  # 1 MiB .. 4 GiB per array
_OPS = (MemOp.READ, MemOp.WRITE, MemOp.COPY, MemOp.TRIAD)
# the size sweep reads at least this many bytes per launch (passes x size): the launch's own
# cost stays below ~1 % and an L2-resident array is read from L2 (hbm_triton.cache_read)
CACHE_SWEEP_BYTES = 1 << 30
CACHE_SWEEP_PROGRAMS_PER_SM = 8
# (block, num_warps) tried per op for the plain grid on a TUNE_BYTES array before the sweep;
# the fastest median is used at every size and recorded (environment "tuned"). On the H200
# the copy's best was (2048, 16): 4.20 TB/s against (4096, 8)'s 4.03 (hbm_tune.py).
TUNE_CANDIDATES = ((1024, 4), (1024, 8), (2048, 8), (2048, 16), (4096, 8), (4096, 16),
                   (8192, 16))
TUNE_BYTES = 1 << 30
TUNE_REPEATS = 10


@dataclass(frozen=True, slots=True)
class HbmSettings:
    sizes_bytes: Sequence[int] = DEFAULT_HBM_SIZES
    repeats: int = 50
    warmup: int = 5
    device_index: int = 0
    block: int = 4096
    num_warps: int = 8
    programs_per_sm: int = 4
    tune: bool = True  # the plain grid's (block, num_warps) per op from TUNE_CANDIDATES
    kv_batches: Sequence[int] = DEFAULT_KV_BATCHES
    kv_shape: KvShape = KvShape()  # noqa: RUF009 - frozen, shared safely

    def to_json(self) -> dict[str, Any]:
        return {"device": f"cuda:{self.device_index}", "sizes_bytes": list(self.sizes_bytes),
                "repeats": self.repeats, "warmup": self.warmup, "block": self.block,
                "num_warps": self.num_warps, "programs_per_sm": self.programs_per_sm,
                "tune": self.tune,
                "kv_batches": list(self.kv_batches), "kv_heads": self.kv_shape.n_kv_heads,
                "kv_head_dim": self.kv_shape.head_dim,
                "kv_context_tokens": self.kv_shape.context_tokens,
                "kv_block_size": self.kv_shape.block_size, "kv_dtype": self.kv_shape.dtype}


def _torch_ops(a: Any, b: Any, c: Any) -> dict[str, Any]:
    import torch

    return {"read": b.sum, "write": lambda: a.fill_(3.0),
            "copy": lambda: a.copy_(b), "triad": lambda: torch.add(b, c, alpha=3.0, out=a)}


def _loop_time_ns(fn: Any, repeats: int) -> float:
    """Mean time of ``repeats`` back-to-back calls between one event pair (ns per call)."""
    import torch

    fn()
    torch.cuda.synchronize()
    s = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
    e = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
    s.record()
    for _ in range(repeats):
        fn()
    e.record()
    torch.cuda.synchronize()
    return float(s.elapsed_time(e)) * 1e6 / repeats


def tune_plain_grid(st: HbmSettings) -> tuple[dict[str, tuple[int, int]], str]:
    """The fastest (block, num_warps) of :data:`TUNE_CANDIDATES` per op (plain grid, median
    of :data:`TUNE_REPEATS` calls on a :data:`TUNE_BYTES` array), and the copy's loads
    (``evict_first`` or ``cg``, each tried with every candidate)."""
    import torch

    from kernels_bench.hbm_triton import triton_kernels

    n = min(TUNE_BYTES, max(st.sizes_bytes)) // 4
    a = torch.empty(n, dtype=torch.float32, device="cuda")
    b = torch.full((n,), 1.0, dtype=torch.float32, device="cuda")
    c = torch.full((n,), 2.0, dtype=torch.float32, device="cuda")
    best: dict[str, tuple[float, tuple[int, int], str]] = {}
    for (blk, warps), loads in itertools.product(TUNE_CANDIDATES, ("evict_first", "cg")):
        calls = triton_kernels(a, b, c, block=blk, num_warps=warps, copy_loads=loads)
        for op in _OPS if loads == "evict_first" else (MemOp.COPY,):
            times = time_cuda_events(calls[str(op)], repeats=TUNE_REPEATS, warmup=2)
            med = sorted(times)[len(times) // 2]
            if str(op) not in best or med < best[str(op)][0]:
                best[str(op)] = (med, (blk, warps), loads)
    del a, b, c
    torch.cuda.empty_cache()
    return {op: cfg for op, (_, cfg, _) in best.items()}, best[str(MemOp.COPY)][2]


def _torch_timer_ns(fn: Any, min_run_time_s: float = 0.5) -> float:
    """Median time of one call by ``torch.utils.benchmark.Timer.blocked_autorange`` (ns)."""
    from torch.utils.benchmark import Timer

    m = Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time_s)
    return float(m.median) * 1e9


def _size_samples(run: BenchRun, size: int, st: HbmSettings, peaks: DevicePeaks,
                  sms: int, *, last: bool, tuned: dict[str, tuple[int, int]] | None,
                  copy_loads: str = "evict_first") -> None:
    import torch

    from kernels_bench.hbm_triton import triton_kernels

    n = size // 4
    a = torch.empty(n, dtype=torch.float32, device="cuda")
    b = torch.full((n,), 1.0, dtype=torch.float32, device="cuda")
    c = torch.full((n,), 2.0, dtype=torch.float32, device="cuda")
    real = n * 4
    impls = {
        "triton": triton_kernels(a, b, c, block=st.block, num_warps=st.num_warps,
                                 configs=tuned, copy_loads=copy_loads),
        "triton-persistent": triton_kernels(a, b, c, block=st.block, num_warps=st.num_warps,
                                            persistent_programs=sms * st.programs_per_sm),
        "torch": _torch_ops(a, b, c),
    }
    for impl, calls in impls.items():
        for op in _OPS:
            times = time_cuda_events(calls[str(op)], repeats=st.repeats, warmup=st.warmup)
            name = "torch-memcpy" if impl == "torch" and op is MemOp.COPY else impl
            sample = make_sample(f"hbm_{op}", name, size_bytes=real,
                                 moved_bytes=mem_moved_bytes(op, real), times_ns=times,
                                 peaks=peaks, dtype="float32")
            run.add(sample, times)
            if last and impl.startswith("triton"):
                loop_ns = _loop_time_ns(calls[str(op)], st.repeats)
                loop_bps = mem_moved_bytes(op, real) / (loop_ns / 1e9)
                timer_bps = mem_moved_bytes(op, real) / (_torch_timer_ns(calls[str(op)]) / 1e9)
                run.environment.setdefault("checks", []).append({
                    "bench": f"hbm_{op}", "implementation": impl, "size_bytes": real,
                    "per_call_bytes_per_s": sample.bytes_per_s,
                    "loop_bytes_per_s": loop_bps,
                    "agree_frac": sample.bytes_per_s / loop_bps - 1.0,
                    "torch_timer_bytes_per_s": timer_bps,
                    "torch_timer_agree_frac": sample.bytes_per_s / timer_bps - 1.0})
    del a, b, c, impls
    torch.cuda.empty_cache()


def _cache_sweep(run: BenchRun, size: int, st: HbmSettings, peaks: DevicePeaks,
                 sms: int) -> None:
    """``cache_read`` at one size: ``passes`` reads of the array in one launch (bytes moved
    = passes x size, from L2 while the array fits there, from HBM past it)."""
    import torch

    from kernels_bench.hbm_triton import cache_read

    n = size // 4
    x = torch.full((n,), 1.0, dtype=torch.float32, device="cuda")
    passes = max(1, CACHE_SWEEP_BYTES // (n * 4))
    call = cache_read(x, passes, sms * CACHE_SWEEP_PROGRAMS_PER_SM, block=st.block,
                      num_warps=st.num_warps)
    times = time_cuda_events(call, repeats=st.repeats, warmup=st.warmup)
    run.add(make_sample("cache_read", f"triton-{passes}passes", size_bytes=n * 4,
                        moved_bytes=passes * n * 4, times_ns=times, peaks=peaks,
                        dtype="float32"), times)
    del x
    torch.cuda.empty_cache()


def _kv_samples(run: BenchRun, st: HbmSettings, peaks: DevicePeaks) -> None:
    import torch

    for batch in st.kv_batches:
        case = kv_gather_case(batch, st.kv_shape, "cuda")
        times = time_cuda_events(case.gather, repeats=st.repeats, warmup=st.warmup)
        run.add(make_sample("kv_gather", f"torch-index_select-b{batch}",
                            size_bytes=case.read_bytes,
                            moved_bytes=case.read_bytes + case.write_bytes, times_ns=times,
                            peaks=peaks, dtype=st.kv_shape.dtype), times)
        del case
        torch.cuda.empty_cache()


def run_hbm_bench(st: HbmSettings) -> BenchRun:
    """Every implementation and op at every size, the cache sweep's read at every size, then
    the KV gather at every batch size."""
    import torch

    if not torch.cuda.is_available():
        raise ValueError("no CUDA GPU: use servescope bench hbm --device cpu (host memory)")
    torch.cuda.set_device(st.device_index)
    props = torch.cuda.get_device_properties(st.device_index)
    peaks = device_peaks(st.device_index)
    from kernels_bench.topology import gpu_topology

    run = BenchRun("hbm", environment={
        "peaks": {peaks.name: peaks.to_json()}, "torch": torch.__version__,
        "l2_bytes": int(getattr(props, "L2_cache_size", 0)),
        "sm_count": int(props.multi_processor_count), "topology": gpu_topology()})
    sizes = list(st.sizes_bytes)
    tuned, copy_loads = tune_plain_grid(st) if st.tune else (None, "evict_first")
    if tuned is not None:
        run.environment["tuned"] = {op: {"block": b, "num_warps": w}
                                    for op, (b, w) in tuned.items()}
        run.environment["tuned"]["copy"]["loads"] = copy_loads
    free = torch.cuda.mem_get_info()[0]
    for i, size in enumerate(sizes):
        if 3 * size > 0.8 * free:
            run.warnings.append(f"size {size} B skipped: 3 arrays do not fit in free memory")
            continue
        _size_samples(run, size, st, peaks, props.multi_processor_count,
                      last=i == len(sizes) - 1, tuned=tuned, copy_loads=copy_loads)
        _cache_sweep(run, size, st, peaks, props.multi_processor_count)
    _kv_samples(run, st, peaks)
    return run
