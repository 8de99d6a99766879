"""Steady-state cost of each NVML call the GPU collector makes, on GPU 0 (µs): the first call,
then the median and max of 50 (PCIe throughput: 5). It wrote
tests/data/gpu/h200_nvml_call_latency.json: ``python3 tests/gpu/measure_nvml_latency.py``
on the H200 (needs nvidia-ml-py and a GPU; not a test)."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

_GPM_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 20, 21, 60, 61)


def _cost(fn: Callable[[], Any], n: int) -> dict[str, float]:
    t0 = time.perf_counter_ns()
    fn()
    first = (time.perf_counter_ns() - t0) / 1e3
    ts = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        ts.append((time.perf_counter_ns() - t0) / 1e3)
    return {"first_us": round(first, 1), "median_us": round(statistics.median(ts), 1),
            "max_us": round(max(ts), 1)}


def main() -> None:
    import pynvml as nv

    nv.nvmlInit()
    h = nv.nvmlDeviceGetHandleByIndex(0)
    pcie = [nv.NVML_FI_DEV_PCIE_COUNT_TX_BYTES, nv.NVML_FI_DEV_PCIE_COUNT_RX_BYTES]
    nvlink = [*pcie, nv.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX,
              nv.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX]
    s1, s2 = nv.nvmlGpmSampleAlloc(), nv.nvmlGpmSampleAlloc()

    def gpm_metrics() -> None:
        g = nv.c_nvmlGpmMetricsGet_t()
        g.version, g.numMetrics = nv.NVML_GPM_METRICS_GET_VERSION, len(_GPM_IDS)
        g.sample1, g.sample2 = s1, s2
        for j, mid in enumerate(_GPM_IDS):
            g.metrics[j].metricId = mid
        nv.nvmlGpmMetricsGet(g)

    nv.nvmlGpmSampleGet(h, s1)
    time.sleep(0.1)
    nv.nvmlGpmSampleGet(h, s2)
    calls: dict[str, Callable[[], Any]] = {
        "utilization": lambda: nv.nvmlDeviceGetUtilizationRates(h),
        "memory": lambda: nv.nvmlDeviceGetMemoryInfo(h),
        "power": lambda: nv.nvmlDeviceGetPowerUsage(h),
        "energy": lambda: nv.nvmlDeviceGetTotalEnergyConsumption(h),
        "sm_clock": lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM),
        "mem_clock": lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM),
        "clock_event_reasons": lambda: nv.nvmlDeviceGetCurrentClocksEventReasons(h),
        "temperature": lambda: nv.nvmlDeviceGetTemperature(h, 0),
        "field_values_pcie": lambda: nv.nvmlDeviceGetFieldValues(h, pcie),
        "field_values_pcie_nvlink": lambda: nv.nvmlDeviceGetFieldValues(h, nvlink),
        "compute_processes": lambda: nv.nvmlDeviceGetComputeRunningProcesses(h),
        "graphics_processes": lambda: nv.nvmlDeviceGetGraphicsRunningProcesses(h),
        "gpm_sample_get": lambda: nv.nvmlGpmSampleGet(h, s2),
        "gpm_metrics_get_17": gpm_metrics,
        "pcie_throughput": lambda: nv.nvmlDeviceGetPcieThroughput(
            h, nv.NVML_PCIE_UTIL_TX_BYTES),
    }
    out: dict[str, Any] = {name: _cost(fn, 5 if name == "pcie_throughput" else 50)
                           for name, fn in calls.items()}
    out["pcie_counter_value_types"] = [int(v.valueType)
                                       for v in nv.nvmlDeviceGetFieldValues(h, pcie)]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
