"""What the GPU analysis returns: :class:`GpuWindowFigures` per GPU (and all GPUs combined)
over one time window, gathered in :class:`GpuFigures`. Plain data; docs/metrics.md defines
each field ("GPU figures"). NaN: the device or the run did not record what the field needs
(no GPM on pre-Hopper GPUs, no energy counter, no requests completed in the window, ...).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["CLOCK_EVENT_REASONS", "IDLE_REASON_BIT", "POWER_BITS", "THERMAL_BITS",
           "THROTTLE_BITS", "GpuFigures", "GpuWindowFigures", "ThrottleShare"]

# NVML clock-event ("throttle") reason bits, as pynvml's nvmlClocksEventReason* constants
# (nvmlClocksThrottleReason* are the old names of the same bits). 0x1 (GPU idle) is not a
# throttle: the clock is low because there is no work.
CLOCK_EVENT_REASONS: dict[int, str] = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
IDLE_REASON_BIT = 0x1
# what slows a GPU that has work: power and thermal caps and hardware slowdown. Not idle, not
# a clock the user set (applications clocks, display clock), not sync boost (a multi-GPU
# clock match).
POWER_BITS = 0x4 | 0x80  # sw_power_cap, hw_power_brake_slowdown
THERMAL_BITS = 0x20 | 0x40  # sw_thermal_slowdown, hw_thermal_slowdown
THROTTLE_BITS = POWER_BITS | THERMAL_BITS | 0x8  # ... and hw_slowdown


@dataclass(frozen=True, slots=True)
class ThrottleShare:
    """Share of the window's NVML samples during which one clock-event reason was set."""

    reason: str  # a CLOCK_EVENT_REASONS name
    bit: int
    time_frac: float


@dataclass(frozen=True, slots=True)
class GpuWindowFigures:
    """One GPU (``gpu_index``), or every GPU watched together (``gpu_index`` None), over
    [``start_ns``, ``end_ns``] on the run's monotonic clock."""

    gpu_index: int | None  # None: the combination of every GPU watched
    gpu_uuid: str  # "" for the combination
    name: str  # the device's name ("NVIDIA H200"); "all GPUs" for the combination
    start_ns: int
    end_ns: int
    # -- GPM (Hopper and newer), time-weighted over the GPM windows overlapping the window
    sm_busy_frac: float  # GPM sm_util / 100
    sm_occupancy_frac: float  # GPM sm_occupancy / 100
    tensor_active_frac: float  # GPM any_tensor_util / 100
    dram_bw_bytes_per_s: float  # GPM dram_bw_util / 100 × peak_dram_bytes_per_s
    dram_bw_peak_frac: float  # GPM dram_bw_util / 100
    peak_dram_bytes_per_s: float  # devices.json (the combination: the sum)
    gpm_windows: int  # GPM windows overlapping the window
    gpm_period_median_s: float  # their median length
    # -- NVML samples inside the window
    nvml_util_frac: float  # mean of util_gpu_frac ("a kernel was running")
    power_mean_w: float  # mean of power_w (the combination: the sum of the GPUs' means)
    energy_j: float  # from the cumulative energy counter, interpolated at the window's edges
    sm_clock_median_mhz: float
    max_sm_clock_mhz: float  # devices.json
    sm_clock_max_frac: float  # sm_clock_median_mhz / max_sm_clock_mhz
    throttled_frac: float  # samples with a THROTTLE_BITS reason set (power, thermal, slowdown)
    throttle: tuple[ThrottleShare, ...]  # every reason seen in the window, idle included
    mem_used_max_bytes: float
    mem_total_bytes: float
    mem_used_max_frac: float
    samples: int  # NVML samples inside the window
    sample_period_median_s: float  # median spacing of those samples (the real period)
    # -- per request (client records: successful measured requests ending in the window)
    requests_completed: int
    output_tokens: int
    energy_per_output_token_j: float  # energy_j / output_tokens
    energy_per_request_j: float  # energy_j / requests_completed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class GpuFigures:
    """The GPU figures of one run over one window (the steady-state window in analyses)."""

    start_ns: int
    end_ns: int
    window_note: str  # where the window comes from ("steady state", "whole load: ...")
    gpus: tuple[GpuWindowFigures, ...]  # one per GPU watched, by gpu_index
    combined: GpuWindowFigures  # all GPUs: docs/metrics.md says how each field combines
    gpm_supported: bool  # at least one GPU recorded GPM metrics
    warnings: tuple[str, ...] = ()  # GPU files that could not be read (GpuTables.warnings)

    def gpu(self, index: int) -> GpuWindowFigures:
        """The figures of GPU ``index`` (KeyError naming the GPUs there are)."""
        for g in self.gpus:
            if g.gpu_index == index:
                return g
        raise KeyError(f"no GPU {index}; the run watched "
                       f"{', '.join(str(g.gpu_index) for g in self.gpus) or 'none'}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
