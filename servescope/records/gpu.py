"""GPU telemetry records (NVML and, on Hopper and newer, GPM), on the run's monotonic clock.

The schema the GPU collector writes (issue 10); no writer in this version yet. A field a
device does not support is ``None`` (recorded once as unsupported by the collector, not as
an error per sample).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GpmSample", "GpuProcessSample", "GpuSample"]


@dataclass(frozen=True, slots=True)
class GpuSample:
    """One NVML reading of one GPU (or MIG instance), taken at ``t_ns``."""

    t_ns: int  # when the reading was taken (monotonic, the run's clock)
    gpu_index: int
    gpu_uuid: str
    mig_gpu_instance: int | None  # None: the whole GPU
    util_gpu_frac: float | None  # NVML "a kernel was running" share of its sample period
    util_mem_frac: float | None
    mem_used_bytes: int | None
    mem_total_bytes: int | None
    power_w: float | None  # NVML's ~1 s average on Ampere and newer
    energy_mj: int | None  # the cumulative energy counter (energy per window comes from it)
    sm_clock_mhz: int | None
    mem_clock_mhz: int | None
    clock_event_reasons: int | None  # NVML clock-event (throttle) bitmask
    temp_c: int | None
    pcie_tx_bytes_per_s: float | None
    pcie_rx_bytes_per_s: float | None
    nvlink_tx_bytes_total: int | None  # cumulative counters where the device has NVLink
    nvlink_rx_bytes_total: int | None


@dataclass(frozen=True, slots=True)
class GpmSample:
    """One GPM metric over the window between two GPM samples (Hopper and newer)."""

    t_start_ns: int
    t_end_ns: int
    gpu_index: int
    mig_gpu_instance: int | None
    metric_id: int  # NVML_GPM_METRIC_* (e.g. 2 SM_UTIL, 3 SM_OCCUPANCY, 10 DRAM_BW_UTIL)
    metric: str  # its name, lower case (sm_util, sm_occupancy, dram_bw_util, ...)
    value: float  # GPM's own unit: percent for *_util/*_occupancy, MiB/s for *_per_sec


@dataclass(frozen=True, slots=True)
class GpuProcessSample:
    """GPU memory held by one process (an engine's) on one GPU."""

    t_ns: int
    gpu_index: int
    pid: int
    used_mem_bytes: int | None
