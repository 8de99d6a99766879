"""Bandwidth measurements (HBM, GPU-to-GPU, collectives, network) against a stated peak.

The schema kernels_bench writes (issue 12); no writer in this version yet.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BandwidthSample"]


@dataclass(frozen=True, slots=True)
class BandwidthSample:
    """One benchmark at one message size: the median of ``repeats`` timed runs."""

    bench: str  # hbm_read, hbm_copy, p2p_copy, all_reduce, ...
    implementation: str  # triton, torch, copy_engine, nccl, gloo, ...
    size_bytes: int  # the buffer or message size
    moved_bytes: int  # bytes really moved per run (read + write for a copy)
    time_ns: int  # median time of one run
    time_spread_frac: float  # (p90 - p10) / median of the repeats
    repeats: int
    bytes_per_s: float  # moved_bytes / time (algbw for collectives)
    bus_bytes_per_s: float | None  # nccl-tests' busbw for collectives
    peak_bytes_per_s: float | None  # the stated peak it is measured against
    peak_source: str  # "nvml" (clock x bus width), "datasheet", ...
    devices: tuple[int, ...]
    ranks: int
