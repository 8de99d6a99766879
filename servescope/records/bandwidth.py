"""Bandwidth measurements (HBM, GPU-to-GPU, collectives, network) against a stated peak.

Written by ``kernels_bench`` into ``RUN/bench/bandwidth.parquet`` (one row per benchmark,
implementation and size) beside ``RUN/bench/repeats.parquet`` (one row per timed repeat:
``bench``, ``implementation``, ``size_bytes``, ``repeat``, ``time_ns``). docs/kernels_bench.md
states every byte convention and formula.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BandwidthSample"]


@dataclass(frozen=True, slots=True)
class BandwidthSample:
    """One benchmark at one message size: the median of ``repeats`` timed runs.

    ``size_bytes`` is the buffer (HBM, host) or nccl-tests' "size" column (collectives);
    ``moved_bytes`` the bytes counted per run: read + write for a copy (STREAM's rule), the
    collective's size for algbw (nccl-tests' rule). ``bytes_per_s`` = moved / median time
    (algbw for collectives); ``bus_bytes_per_s`` nccl-tests' busbw (collectives only).
    The two peaks: ``peak_nvml_bytes_per_s`` derived from the device (memory clock x bus
    width x 2 / 8; None off a GPU) and ``peak_datasheet_bytes_per_s`` from the datasheet
    table (``peak_datasheet_source`` names the row; None when unknown).
    """

    bench: str  # hbm_read, hbm_copy, host_triad, kv_gather, p2p_copy, all_reduce, ...
    implementation: str  # triton, torch, copy_engine, numpy, nccl, gloo, perftest, ...
    size_bytes: int
    moved_bytes: int
    time_ns: int  # median time of one run
    time_p10_ns: int
    time_p90_ns: int
    time_spread_frac: float  # (p90 - p10) / median of the repeats
    repeats: int
    bytes_per_s: float
    bus_bytes_per_s: float | None
    peak_nvml_bytes_per_s: float | None
    peak_datasheet_bytes_per_s: float | None
    peak_datasheet_source: str  # the datasheet row ("NVIDIA H200 SXM: 4.8 TB/s"), "" if none
    device: str  # "cpu", "NVIDIA H200", "cuda:0->cuda:1", ...
    dtype: str  # element type moved ("float32", "bfloat16", "uint8")
    ranks: int  # processes taking part (1 for a single-device benchmark)
    transport: str  # collectives: NCCL's transport (P2P/NVLink, SHM, NET/IB, NET/Socket), gloo
