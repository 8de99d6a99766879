"""Host-memory bandwidth with torch on CPU tensors: the HBM benchmark's CPU fallback.

The same four kernels as on the GPU, on float32 arrays of N bytes each, timed with
``perf_counter_ns`` one call at a time after warm-up; bytes counted as STREAM counts them
(formulas.MemOp): read ``a.sum()`` N, write ``a.fill_(s)`` N, copy ``a.copy_(b)`` 2N, triad
``torch.add(b, c, alpha=s, out=a)`` 3N. Sizes below the last-level cache show the cache's
bandwidth, not DRAM's: sweep past it (the default sizes reach 256 MiB).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kernels_bench.formulas import MemOp, mem_moved_bytes
from kernels_bench.peaks import host_peaks
from kernels_bench.results import BenchRun, make_sample
from kernels_bench.timing import time_host

__all__ = ["DEFAULT_HOST_SIZES", "HostSettings", "host_kernels", "run_host_bench"]

DEFAULT_HOST_SIZES = tuple(1 << p for p in range(16, 29, 2))  # 64 KiB .. 256 MiB
_SCALAR = 3.0


@dataclass(frozen=True, slots=True)
class HostSettings:
    sizes_bytes: Sequence[int] = DEFAULT_HOST_SIZES
    ops: Sequence[MemOp] = (MemOp.READ, MemOp.WRITE, MemOp.COPY, MemOp.TRIAD)
    repeats: int = 20
    warmup: int = 3
    threads: int | None = None  # torch.set_num_threads; None: torch's default

    def to_json(self) -> dict[str, Any]:
        return {"sizes_bytes": list(self.sizes_bytes), "ops": [str(o) for o in self.ops],
                "repeats": self.repeats, "warmup": self.warmup, "threads": self.threads}


def host_kernels(size_bytes: int) -> dict[MemOp, Callable[[], Any]]:
    """The four kernels on fresh float32 CPU tensors of ``size_bytes`` each (rounded down to
    whole elements, at least one); each call does the operation once."""
    import torch

    n = max(size_bytes // 4, 1)
    a = torch.zeros(n, dtype=torch.float32)
    b = torch.full((n,), 1.0, dtype=torch.float32)
    c = torch.full((n,), 2.0, dtype=torch.float32)
    return {
        MemOp.READ: b.sum,
        MemOp.WRITE: lambda: a.fill_(_SCALAR),
        MemOp.COPY: lambda: a.copy_(b),
        MemOp.TRIAD: lambda: torch.add(b, c, alpha=_SCALAR, out=a),
    }


def run_host_bench(settings: HostSettings) -> BenchRun:
    """Every op at every size; one sample each (bench ``host_<op>``, implementation
    ``torch``)."""
    import torch

    if settings.repeats < 1 or settings.warmup < 0:
        raise ValueError("repeats must be at least 1 and warmup at least 0")
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    peaks = host_peaks()
    run = BenchRun("host", environment={
        "peaks": {"cpu": peaks.to_json()}, "torch": torch.__version__,
        "torch_threads": torch.get_num_threads()})
    for size in settings.sizes_bytes:
        if size < 4:
            raise ValueError(f"size {size} B is below one float32 element")
        kernels = host_kernels(size)
        real = (size // 4) * 4
        for op in settings.ops:
            times = time_host(kernels[op], repeats=settings.repeats, warmup=settings.warmup)
            times = [max(t, 1) for t in times]
            run.add(make_sample(f"host_{op}", "torch", size_bytes=real,
                                moved_bytes=mem_moved_bytes(op, real), times_ns=times,
                                peaks=peaks, dtype="float32"), times)
        del kernels
    return run
