"""Byte conventions, bandwidth formulas and peaks: pure arithmetic, no torch, no device.

**Collectives** follow nccl-tests (``doc/PERFORMANCE.md`` and each ``*GetBw`` function of
``src/*.cu``): the message *size* S is nccl-tests' "size" column, the per-rank buffer that
holds the whole result (all-reduce, broadcast, reduce, send/recv: the buffer; all-gather:
the *output*, n x the per-rank input; reduce-scatter: the *input*, n x the per-rank output;
all-to-all: the per-rank send buffer, n blocks); ``algbw = S / t``; ``busbw = algbw x
factor`` with factor 2(n-1)/n for all-reduce, (n-1)/n for all-gather, reduce-scatter and
all-to-all, and 1 for broadcast, reduce and send/recv. busbw is meant to be compared with
one rank's link peak whatever n is. GB is 1e9 bytes everywhere here (as in nccl-tests and
nvbandwidth); perftest prints MiB/s (2^20) or Gb/s (1e9 bits).

**Memory kernels** count bytes as the hardware moves them (STREAM's rule): read N, write N,
copy 2N (read + write), triad ``a = b + s*c`` 3N, for N bytes per array. nvbandwidth's
``device_local_copy`` and cudaMemcpy-style tools report the bytes *copied* (N for a copy):
divide our copy figure by 2 to compare with them (nvbandwidth #48).

**Peaks**: the device's own, from NVML (memory clock in MHz x 1e6 x bus width in bits x 2
for double data rate / 8 bits), and a datasheet table. They disagree: an H200 reports
3201 MHz x 6016 bit = 4.81 TB/s (another H200 6144 bit = 4.92 TB/s) against the 4.8 TB/s
datasheet, so every result carries both percentages.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DATASHEET",
    "Collective",
    "DatasheetPeak",
    "MemOp",
    "algbw_bytes_per_s",
    "bus_factor",
    "busbw_bytes_per_s",
    "collective_size_bytes",
    "datasheet_peak",
    "frac_of_peak",
    "kv_gather_bytes",
    "mem_moved_bytes",
    "nvml_peak_bytes_per_s",
    "tp_decode_allreduce_bytes",
]


class Collective(StrEnum):
    ALL_REDUCE = "all_reduce"
    ALL_GATHER = "all_gather"
    REDUCE_SCATTER = "reduce_scatter"
    ALL_TO_ALL = "all_to_all"
    BROADCAST = "broadcast"
    REDUCE = "reduce"
    SEND_RECV = "send_recv"


def bus_factor(op: Collective, n_ranks: int) -> float:
    """nccl-tests' busbw / algbw ratio for ``op`` on ``n_ranks`` ranks."""
    if n_ranks < 1:
        raise ValueError(f"n_ranks must be at least 1, not {n_ranks}")
    n = float(n_ranks)
    if op is Collective.ALL_REDUCE:
        return 2.0 * (n - 1.0) / n
    if op in (Collective.ALL_GATHER, Collective.REDUCE_SCATTER, Collective.ALL_TO_ALL):
        return (n - 1.0) / n
    return 1.0


def collective_size_bytes(op: Collective, per_rank_bytes: int, n_ranks: int) -> int:
    """nccl-tests' size S of ``op`` when each rank contributes ``per_rank_bytes``: the
    per-rank input for all-gather (S = n x input), the per-rank output for reduce-scatter
    (S = n x output), one peer's block for all-to-all (S = n x block), the buffer otherwise."""
    if op in (Collective.ALL_GATHER, Collective.REDUCE_SCATTER, Collective.ALL_TO_ALL):
        return per_rank_bytes * n_ranks
    return per_rank_bytes


def algbw_bytes_per_s(size_bytes: int, time_ns: float) -> float:
    """nccl-tests' algbw: S / t (bytes per second)."""
    if time_ns <= 0:
        raise ValueError(f"time must be positive, not {time_ns} ns")
    return size_bytes / (time_ns / 1e9)


def busbw_bytes_per_s(op: Collective, size_bytes: int, time_ns: float, n_ranks: int) -> float:
    """nccl-tests' busbw: algbw x :func:`bus_factor`."""
    return algbw_bytes_per_s(size_bytes, time_ns) * bus_factor(op, n_ranks)


class MemOp(StrEnum):
    READ = "read"  # sum(a): N read
    WRITE = "write"  # a = s: N written
    COPY = "copy"  # a = b: N read + N written
    TRIAD = "triad"  # a = b + s*c: 2N read + N written


_MEM_ARRAYS = {MemOp.READ: 1, MemOp.WRITE: 1, MemOp.COPY: 2, MemOp.TRIAD: 3}


def mem_moved_bytes(op: MemOp, array_bytes: int) -> int:
    """Bytes the memory really moves for ``op`` on arrays of ``array_bytes`` each (STREAM)."""
    return _MEM_ARRAYS[op] * array_bytes


def kv_gather_bytes(*, batch: int, context_tokens: int, n_layers: int, n_kv_heads: int,
                    head_dim: int, elem_bytes: int, block_size: int = 16) -> tuple[int, int]:
    """(bytes read, bytes written) by gathering the K and V of ``batch`` sequences of
    ``context_tokens`` each from a paged cache of blocks of ``block_size`` tokens: every
    block the block table names is read whole (a partly filled last block too), and the
    gathered tokens are written once, K and V."""
    blocks = -(-context_tokens // block_size)
    per_token = 2 * n_layers * n_kv_heads * head_dim * elem_bytes  # K and V
    return batch * blocks * block_size * per_token, batch * context_tokens * per_token


def tp_decode_allreduce_bytes(hidden: int, batch: int, elem_bytes: int) -> int:
    """The all-reduce a tensor-parallel decode step issues after attention and after the MLP:
    one token per sequence, ``hidden x batch x bytes per element``."""
    return hidden * batch * elem_bytes


def nvml_peak_bytes_per_s(mem_clock_mhz: float, bus_width_bits: int) -> float:
    """Memory clock (NVML ``nvmlDeviceGetMaxClockInfo(h, NVML_CLOCK_MEM)``, MHz) x bus width
    (``nvmlDeviceGetMemoryBusWidth``, bits) x 2 (double data rate) / 8 bits per byte."""
    return mem_clock_mhz * 1e6 * bus_width_bits * 2.0 / 8.0


@dataclass(frozen=True, slots=True)
class DatasheetPeak:
    """One GPU model's published peaks. ``match``: lower-case substrings an NVML name must
    all contain; ``nvlink_bytes_per_s``: per direction, per GPU (None: no NVLink)."""

    label: str
    match: tuple[str, ...]
    hbm_bytes_per_s: float
    nvlink_bytes_per_s: float | None
    source: str
    exclude: tuple[str, ...] = ()


# Most specific first (the "H100 NVL" row before "H100"). Sources: NVIDIA datasheets.
DATASHEET: tuple[DatasheetPeak, ...] = (
    # H100 datasheet (nvidia.com/en-us/data-center/h100): SXM 3.35 TB/s, NVLink 900 GB/s
    # total (450 per direction); PCIe 2 TB/s, NVLink bridge 600 GB/s; NVL 3.9 TB/s.
    DatasheetPeak("NVIDIA H100 NVL", ("h100", "nvl"), 3.9e12, 300e9,
                  "H100 datasheet: H100 NVL 3.9 TB/s, NVLink bridge 600 GB/s"),
    DatasheetPeak("NVIDIA H100 PCIe", ("h100", "pcie"), 2.0e12, 300e9,
                  "H100 datasheet: H100 PCIe 2 TB/s, NVLink bridge 600 GB/s"),
    DatasheetPeak("NVIDIA H100 SXM", ("h100",), 3.35e12, 450e9,
                  "H100 datasheet: H100 SXM 3.35 TB/s, NVLink 900 GB/s", exclude=("gh100",)),
    # H200 datasheet (nvidia.com/en-us/data-center/h200): 141 GB HBM3e, 4.8 TB/s, NVLink
    # 900 GB/s (SXM).
    DatasheetPeak("NVIDIA H200", ("h200",), 4.8e12, 450e9,
                  "H200 datasheet: 4.8 TB/s, NVLink 900 GB/s", exclude=("gh200",)),
    # A100 datasheet (nvidia.com/en-us/data-center/a100): 40 GB 1,555 GB/s; 80 GB PCIe
    # 1,935 GB/s; 80 GB SXM 2,039 GB/s; NVLink 600 GB/s (SXM).
    DatasheetPeak("NVIDIA A100 80GB PCIe", ("a100", "80gb", "pcie"), 1.935e12, 300e9,
                  "A100 datasheet: A100 80GB PCIe 1,935 GB/s"),
    DatasheetPeak("NVIDIA A100 80GB SXM", ("a100", "80gb"), 2.039e12, 300e9,
                  "A100 datasheet: A100 80GB SXM 2,039 GB/s, NVLink 600 GB/s"),
    DatasheetPeak("NVIDIA A100 40GB", ("a100",), 1.555e12, 300e9,
                  "A100 datasheet: A100 40GB 1,555 GB/s, NVLink 600 GB/s"),
    # L40S datasheet (nvidia.com/en-us/data-center/l40s): 48 GB GDDR6, 864 GB/s, no NVLink.
    DatasheetPeak("NVIDIA L40S", ("l40s",), 864e9, None, "L40S datasheet: 864 GB/s"),
    # HGX B200 (nvidia.com/en-us/data-center/hgx): 8 TB/s per GPU, NVLink5 1.8 TB/s total.
    DatasheetPeak("NVIDIA B200", ("b200",), 8.0e12, 900e9,
                  "HGX B200 datasheet: 8 TB/s, NVLink 1.8 TB/s"),
)


def datasheet_peak(device_name: str) -> DatasheetPeak | None:
    """The datasheet row of an NVML device name (``"NVIDIA H200"``,
    ``"NVIDIA A100-SXM4-80GB"``); None for a device not in the table (a GH200 is not an
    H200: its HBM differs)."""
    name = device_name.lower().replace("-", " ")
    squeezed = name.replace(" ", "")
    for row in DATASHEET:
        if any(x in squeezed for x in row.exclude):
            continue
        if all(m in name or m in squeezed for m in row.match):
            return row
    return None


def frac_of_peak(bytes_per_s: float, peak_bytes_per_s: float | None) -> float | None:
    """``bytes_per_s / peak`` (None without a positive peak)."""
    if peak_bytes_per_s is None or peak_bytes_per_s <= 0:
        return None
    return bytes_per_s / peak_bytes_per_s
