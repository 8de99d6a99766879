"""The peak a device's bandwidth is measured against: from NVML and from the datasheet table.

NVML is read through ``pynvml`` (the ``gpu`` extra), lazily; without it, or without a GPU,
the NVML-derived peak is None and only the datasheet row (if any) remains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernels_bench.formulas import DatasheetPeak, datasheet_peak, nvml_peak_bytes_per_s

__all__ = ["DevicePeaks", "device_peaks", "host_peaks"]


@dataclass(frozen=True, slots=True)
class DevicePeaks:
    name: str
    nvml_bytes_per_s: float | None
    mem_clock_mhz: int | None
    bus_width_bits: int | None
    datasheet: DatasheetPeak | None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        ds = self.datasheet
        return {"name": self.name, "nvml_bytes_per_s": self.nvml_bytes_per_s,
                "mem_clock_mhz": self.mem_clock_mhz, "bus_width_bits": self.bus_width_bits,
                "datasheet_bytes_per_s": ds.hbm_bytes_per_s if ds else None,
                "datasheet_nvlink_bytes_per_s": ds.nvlink_bytes_per_s if ds else None,
                "datasheet_source": ds.source if ds else "", "note": self.note}


def host_peaks() -> DevicePeaks:
    """Host memory: no peak is known (DMI needs root); percentages stay empty."""
    return DevicePeaks("cpu", None, None, None, None,
                       "host memory: no stated peak (DIMM speed x channels is not readable "
                       "without root)")


def device_peaks(index: int = 0) -> DevicePeaks:
    """GPU ``index``'s peaks: NVML's max memory clock x bus width, and the datasheet row."""
    try:
        import pynvml
    except ImportError:
        return DevicePeaks(f"cuda:{index}", None, None, None, None, "pynvml not installed")
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - no driver: no NVML peak
        return DevicePeaks(f"cuda:{index}", None, None, None, None, f"NVML: {exc}")
    try:
        h = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = str(pynvml.nvmlDeviceGetName(h))
        clock = int(pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_MEM))
        width = int(pynvml.nvmlDeviceGetMemoryBusWidth(h))
        return DevicePeaks(name, nvml_peak_bytes_per_s(clock, width), clock, width,
                           datasheet_peak(name))
    except Exception as exc:  # noqa: BLE001 - a field this driver lacks
        return DevicePeaks(f"cuda:{index}", None, None, None, None, f"NVML: {exc}")
    finally:
        pynvml.nvmlShutdown()
