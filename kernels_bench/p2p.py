"""Peer-to-peer copies between every GPU pair (GPU; first measured in a later issue).

Per ordered pair (i -> j): the copy engine (``dst.copy_(src)`` across devices: ATen's
``cudaMemcpyPeerAsync``) one way, and both ways at once (i -> j and j -> i on two streams,
2 x size over the slower stream's time); and an SM kernel (the Triton copy kernel run on
j, reading i's memory through peer access). Bytes counted: the bytes copied (the link
carries each byte once), against the datasheet's NVLink peak per direction (bidirectional:
twice it). The topology is recorded beside them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from kernels_bench.peaks import device_peaks
from kernels_bench.results import BenchRun, make_sample
from kernels_bench.timing import time_cuda_events

__all__ = ["P2PSettings", "run_p2p_bench"]


@dataclass(frozen=True, slots=True)
class P2PSettings:
    size_bytes: int = 256 << 20
    repeats: int = 20
    warmup: int = 3

    def to_json(self) -> dict[str, Any]:
        return {"size_bytes": self.size_bytes, "repeats": self.repeats, "warmup": self.warmup}


def _copy(src: Any, dst: Any) -> Callable[[], Any]:
    return lambda: dst.copy_(src)


def _bidir(x: Any, y: Any, xr: Any, yr: Any) -> Any:
    import torch

    s1 = torch.cuda.Stream(x.device)  # type: ignore[no-untyped-call]
    s2 = torch.cuda.Stream(y.device)  # type: ignore[no-untyped-call]

    def call() -> None:
        cur = torch.cuda.current_stream()
        s1.wait_stream(cur)
        s2.wait_stream(cur)
        with torch.cuda.stream(s1):
            yr.copy_(x, non_blocking=True)
        with torch.cuda.stream(s2):
            xr.copy_(y, non_blocking=True)
        cur.wait_stream(s1)
        cur.wait_stream(s2)
    return call


def run_p2p_bench(st: P2PSettings) -> BenchRun:
    import torch

    from kernels_bench.hbm_triton import triton_kernels
    from kernels_bench.topology import gpu_topology

    n_gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n_gpu < 2:
        raise ValueError(f"p2p needs at least 2 GPUs, this machine has {n_gpu}")
    peaks = device_peaks(0)
    run = BenchRun("p2p", environment={"peaks": {peaks.name: peaks.to_json()},
                                       "topology": gpu_topology(), "gpus": n_gpu})
    n = st.size_bytes // 4
    for i in range(n_gpu):
        for j in range(n_gpu):
            if i == j:
                continue
            can = torch.cuda.can_device_access_peer(j, i)
            x = torch.ones(n, device=f"cuda:{i}")
            y = torch.zeros(n, device=f"cuda:{j}")
            xr, yr = torch.empty_like(x), torch.empty_like(y)
            pair = f"cuda:{i}->cuda:{j}"
            with torch.cuda.device(j):
                t = time_cuda_events(_copy(x, y), repeats=st.repeats, warmup=st.warmup)
                run.add(make_sample("p2p_copy", "copy_engine", size_bytes=n * 4,
                                    moved_bytes=n * 4, times_ns=t, peaks=peaks,
                                    dtype="float32", nvlink=True, device=pair), t)
                t = time_cuda_events(_bidir(x, y, xr, yr), repeats=st.repeats,
                                     warmup=st.warmup)
                s = make_sample("p2p_copy_bidir", "copy_engine", size_bytes=n * 4,
                                moved_bytes=2 * n * 4, times_ns=t, peaks=peaks,
                                dtype="float32", nvlink=True, device=pair)
                ds = s.peak_datasheet_bytes_per_s
                run.add(replace(s, peak_datasheet_bytes_per_s=2 * ds if ds else None), t)
                if can:
                    k = triton_kernels(y, x, x)  # a = y (written on j), b = x (read from i)
                    t = time_cuda_events(k["copy"], repeats=st.repeats, warmup=st.warmup)
                    run.add(make_sample("p2p_copy", "triton-sm", size_bytes=n * 4,
                                        moved_bytes=n * 4, times_ns=t, peaks=peaks,
                                        dtype="float32", nvlink=True, device=pair), t)
                else:
                    run.warnings.append(f"{pair}: no peer access, SM copy not measured")
            del x, y, xr, yr
            torch.cuda.empty_cache()
    return run
