"""GPU telemetry records (NVML and, on Hopper and newer, GPM), on the run's monotonic clock.

What the GPU collector (``collectors/gpu``) writes: ``gpu/devices.json`` (one
:class:`GpuDeviceFacts` per GPU watched), ``gpu/samples.parquet`` (:class:`GpuSample`),
``gpu/gpm.parquet`` (:class:`GpmSample`, long format) and ``gpu/processes.parquet``
(:class:`GpuProcessSample`); docs/run-format.md. A field a device does not support is ``None``
(named once in :attr:`GpuDeviceFacts.unsupported`, not an error per sample).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GpmSample", "GpuDeviceFacts", "GpuProcessSample", "GpuSample"]


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


@dataclass(frozen=True, slots=True)
class GpuDeviceFacts:
    """What does not change during a run, per GPU watched (``gpu/devices.json``)."""

    gpu_index: int  # NVML's index (not the CUDA ordinal under CUDA_VISIBLE_DEVICES)
    gpu_uuid: str
    name: str
    arch: int | None  # NVML's architecture number (9: Hopper)
    memory_total_bytes: int | None
    max_sm_clock_mhz: int | None
    max_mem_clock_mhz: int | None
    mem_bus_width_bits: int | None
    # max memory clock × 2 (DDR) × bus width / 8: the HBM peak the % of peak is against
    peak_dram_bytes_per_s: float | None
    power_limit_w: float | None
    gpm_supported: bool
    mig_gpu_instances: tuple[int, ...]  # GPU instance ids when MIG is on; () otherwise
    why_watched: str  # "engine process 1234", "CUDA_VISIBLE_DEVICES=0,1", "all GPUs", ...
    unsupported: tuple[str, ...]  # fields this device answered NotSupported for (once each)
