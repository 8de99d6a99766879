"""A fake ``pynvml`` for CI, built from real H200 readings (tests/data/gpu/, the probe).

What it keeps of the real device: every value the probe read (name, UUID, memory, clocks,
bus width, power limit, GPM support, MIG off), the per-load NVML snapshots (utilization, SM
clock, power, clock-event reasons) and GPM metrics (idle, copy, GEMM, tiny kernels), the
NotSupported failures (NVLink field values answer ret 3), and each call's latency measured
on the H200 (tests/data/gpu/h200_nvml_call_latency.json; scaled by ``latency_scale``): its
first call on a device and its steady-state median, so the energy counter costs 3.2 ms on
every call and ``nvmlDeviceGetPcieThroughput`` always blocks for its 20 ms window.

A scripted load (``phases``: load name and seconds, the last lasting on) switches from
``nvmlInit`` on. GPM is counter-like: a sample holds each metric's integral over time, so a
window's value is the time-weighted mean of the loads it spans, as on the device. Engine
processes (``procs``) appear in the compute-process list ``procs_after_s`` after init.

Use it through :class:`FakeNvmlProvider` (picklable, so a collector's child process gets
its own fake): ``GpuCollector(nvml=FakeNvmlProvider(FakeNvmlConfig(...)))``.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

PROBE_FILE = Path(__file__).parents[1] / "data" / "gpu" / "h200_nvml_gpm_probe.json"
PROBE: dict[str, Any] = json.loads(PROBE_FILE.read_text())
LATENCY: dict[str, Any] = json.loads(
    (PROBE_FILE.parent / "h200_nvml_call_latency.json").read_text())
LOADS = ("idle", "copy", "gemm", "tiny")

GPM_IDS = {"GRAPHICS_UTIL": 1, "SM_UTIL": 2, "SM_OCCUPANCY": 3, "INTEGER_UTIL": 4,
           "ANY_TENSOR_UTIL": 5, "DFMA_TENSOR_UTIL": 6, "HMMA_TENSOR_UTIL": 7,
           "DMMA_TENSOR_UTIL": 8, "IMMA_TENSOR_UTIL": 9, "DRAM_BW_UTIL": 10, "FP64_UTIL": 11,
           "FP32_UTIL": 12, "FP16_UTIL": 13, "PCIE_TX_PER_SEC": 20, "PCIE_RX_PER_SEC": 21,
           "NVLINK_TOTAL_RX_PER_SEC": 60, "NVLINK_TOTAL_TX_PER_SEC": 61}
FIELD_IDS = {"NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX": 138,
             "NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX": 139,
             "NVML_FI_DEV_PCIE_COUNT_TX_BYTES": 197, "NVML_FI_DEV_PCIE_COUNT_RX_BYTES": 198}
_STEADY_US = 5.38678 / 3  # three cheap calls cost 5.4 µs together (probe)
# the measured latencies (first call, steady median) of the calls the collector makes
_MEASURED = {"nvmlDeviceGetUtilizationRates": "utilization",
             "nvmlDeviceGetMemoryInfo": "memory", "nvmlDeviceGetPowerUsage": "power",
             "nvmlDeviceGetTotalEnergyConsumption": "energy",
             "nvmlDeviceGetClockInfo": "sm_clock",
             "nvmlDeviceGetCurrentClocksEventReasons": "clock_event_reasons",
             "nvmlDeviceGetTemperature": "temperature",
             "nvmlDeviceGetFieldValues": "field_values_pcie_nvlink",
             "nvmlDeviceGetComputeRunningProcesses": "compute_processes",
             "nvmlDeviceGetGraphicsRunningProcesses": "graphics_processes",
             "nvmlGpmSampleGet": "gpm_sample_get", "nvmlGpmMetricsGet": "gpm_metrics_get_17",
             "nvmlDeviceGetPcieThroughput": "pcie_throughput"}
# the probe's first-call latency of the calls made once
_FIRST_ONLY = {"nvmlDeviceGetName": "name", "nvmlDeviceGetUUID": "uuid",
               "nvmlDeviceGetArchitecture": "arch",
               "nvmlDeviceGetEnforcedPowerLimit": "power_limit_mW",
               "nvmlDeviceGetMaxClockInfo": "max_sm_clock",
               "nvmlDeviceGetMemoryBusWidth": "bus_width", "nvmlDeviceGetMigMode": "mig",
               "nvmlGpmQueryDeviceSupport": "gpm_support"}


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return {3: "Not Supported", 9: "Driver Not Loaded", 6: "Not Found"}.get(self.value,
                                                                              "Unknown Error")


class NVMLError_NotSupported(NVMLError):
    def __init__(self) -> None:
        super().__init__(3)


@dataclass(frozen=True)
class FakeNvmlConfig:
    """What the fake host looks like and does (module docstring)."""

    gpus: int = 1
    phases: tuple[tuple[str, float], ...] = (("idle", 1e9),)
    procs: tuple[tuple[int, int, int], ...] = ()  # (gpu index, pid, used bytes)
    procs_after_s: float = 0.0
    latency_scale: float = 0.1
    no_driver: bool = False
    failing: tuple[str, ...] = ()  # functions that raise NVMLError(999) on every call
    unsupported: tuple[str, ...] = ()  # functions that raise NVMLError_NotSupported
    gpm_unsupported: tuple[str, ...] = ()  # GPM metrics answered ret 3
    gpm_nan_every: tuple[str, int] | None = None  # (metric, n): NaN with ret 0 every nth window
    mig_instances: tuple[int, ...] = ()  # GPU instance ids (MIG on) of every GPU


@dataclass(frozen=True)
class FakeNvmlProvider:
    """A picklable provider: each call is a fresh fake NVML (one per process)."""

    config: FakeNvmlConfig = field(default_factory=FakeNvmlConfig)

    def __call__(self) -> FakeNvml:
        return FakeNvml(self.config)


@dataclass
class _Handle:
    index: int
    mig: int | None = None


class _Sample:
    def __init__(self) -> None:
        self.t = -1.0
        self.integrals: dict[str, float] = {}
        self.freed = False


class _Metric:
    def __init__(self) -> None:
        self.metricId = 0
        self.nvmlReturn = 0
        self.value = 0.0


class _MetricsGet:
    def __init__(self) -> None:
        self.version = 0
        self.numMetrics = 0
        self.sample1: Any = None
        self.sample2: Any = None
        self.metrics = [_Metric() for _ in range(477)]


class FakeNvml:
    """The subset of pynvml the GPU collector uses, with pynvml's names."""

    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_FUNCTION_NOT_FOUND = 13
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVML_TEMPERATURE_GPU = 0
    NVML_GPM_METRICS_GET_VERSION = 1
    c_nvmlGpmMetricsGet_t = _MetricsGet

    def __init__(self, config: FakeNvmlConfig) -> None:
        self.config = config
        self.calls: Counter[str] = Counter()
        self.gpm_windows_s: list[float] = []
        self.field_ids_asked: list[tuple[int, ...]] = []
        self._seen: set[tuple[str, int]] = set()
        self._t0: float | None = None
        for name, mid in GPM_IDS.items():
            setattr(self, f"NVML_GPM_METRIC_{name}", mid)
        for name, fid in FIELD_IDS.items():
            setattr(self, name, fid)

    # -- the scripted host
    def _now(self) -> float:
        return time.monotonic() - (self._t0 or 0.0)

    def load(self, t: float | None = None) -> str:
        """The load running ``t`` seconds after init (now by default)."""
        t = self._now() if t is None else t
        for name, seconds in self.config.phases:
            if t < seconds:
                return name
            t -= seconds
        return self.config.phases[-1][0]

    def _integral(self, key: str, t: float, values: Any) -> float:
        """∫₀ᵗ values(load)[key] dt over the scripted phases."""
        total, start = 0.0, 0.0
        for name, seconds in self.config.phases:
            span = min(t, start + seconds) - start
            if span <= 0:
                break
            total += float(values(name).get(key, 0.0)) * span
            start += seconds
        last = self.config.phases[-1]
        if t > start:
            total += float(values(last[0]).get(key, 0.0)) * (t - start)
        return total

    def _call(self, fn: str, handle: _Handle | None = None) -> None:
        self.calls[fn] += 1
        if self._t0 is None and fn != "nvmlInit":
            raise NVMLError(1)  # NVML_ERROR_UNINITIALIZED
        if fn in self.config.failing:
            raise NVMLError(999)
        if fn in self.config.unsupported:
            raise NVMLError_NotSupported
        index = -1 if handle is None else handle.index
        first = (fn, index) not in self._seen
        self._seen.add((fn, index))
        us = _STEADY_US
        if fn in _MEASURED:
            us = LATENCY[_MEASURED[fn]]["first_us" if first else "median_us"]
        elif first and fn in _FIRST_ONLY:
            us = PROBE["nvml"][_FIRST_ONLY[fn]]["us"]
        if us * self.config.latency_scale >= 50:
            time.sleep(us * self.config.latency_scale / 1e6)

    def _handle(self, handle: _Handle) -> _Handle:
        if not 0 <= handle.index < self.config.gpus:
            raise NVMLError(6)
        return handle

    # -- NVML
    def nvmlInit(self) -> None:
        self._call("nvmlInit")
        if self.config.no_driver:
            raise NVMLError(9)
        self._t0 = time.monotonic()

    def nvmlShutdown(self) -> None:
        self._call("nvmlShutdown")
        self._t0 = None

    def nvmlDeviceGetCount(self) -> int:
        self._call("nvmlDeviceGetCount")
        return self.config.gpus

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._call("nvmlDeviceGetHandleByIndex")
        return self._handle(_Handle(index))

    def nvmlDeviceGetUUID(self, h: _Handle) -> str:
        self._call("nvmlDeviceGetUUID", h)
        uuid = str(PROBE["nvml"]["uuid"]["v"])
        return uuid[:-1] + str(h.index)

    def nvmlDeviceGetName(self, h: _Handle) -> str:
        self._call("nvmlDeviceGetName", h)
        return str(PROBE["nvml"]["name"]["v"])

    def nvmlDeviceGetArchitecture(self, h: _Handle) -> int:
        self._call("nvmlDeviceGetArchitecture", h)
        return int(PROBE["nvml"]["arch"]["v"])

    def nvmlDeviceGetMemoryInfo(self, h: _Handle) -> SimpleNamespace:
        self._call("nvmlDeviceGetMemoryInfo", h)
        mem = PROBE["nvml"]["mem"]["v"]
        used = mem["used"] + sum(b for g, _, b in self._procs() if g == h.index)
        return SimpleNamespace(total=mem["total"], used=used, free=mem["total"] - used)

    def nvmlDeviceGetUtilizationRates(self, h: _Handle) -> SimpleNamespace:
        self._call("nvmlDeviceGetUtilizationRates", h)
        u = PROBE["snapshots"][self.load()]["util"]
        return SimpleNamespace(gpu=u["gpu"], memory=u["memory"])

    def nvmlDeviceGetPowerUsage(self, h: _Handle) -> int:
        self._call("nvmlDeviceGetPowerUsage", h)
        return int(PROBE["snapshots"][self.load()]["power_mW"])

    def nvmlDeviceGetEnforcedPowerLimit(self, h: _Handle) -> int:
        self._call("nvmlDeviceGetEnforcedPowerLimit", h)
        return int(PROBE["nvml"]["power_limit_mW"]["v"])

    def nvmlDeviceGetTotalEnergyConsumption(self, h: _Handle) -> int:
        """The probe's counter plus the scripted power integrated over time (mJ)."""
        self._call("nvmlDeviceGetTotalEnergyConsumption", h)
        mw = self._integral("power_mW", self._now(), lambda n: PROBE["snapshots"][n])
        return int(PROBE["nvml"]["energy_mJ"]["v"] + mw)  # mW × s = mJ

    def nvmlDeviceGetTemperature(self, h: _Handle, sensor: int) -> int:
        self._call("nvmlDeviceGetTemperature", h)
        return int(PROBE["nvml"]["temp_C"]["v"])

    def nvmlDeviceGetClockInfo(self, h: _Handle, clock: int) -> int:
        self._call("nvmlDeviceGetClockInfo", h)
        if clock == self.NVML_CLOCK_SM:
            return int(PROBE["snapshots"][self.load()]["sm_clock"])
        return int(PROBE["nvml"]["mem_clock"]["v"])

    def nvmlDeviceGetMaxClockInfo(self, h: _Handle, clock: int) -> int:
        self._call("nvmlDeviceGetMaxClockInfo", h)
        key = "max_sm_clock" if clock == self.NVML_CLOCK_SM else "max_mem_clock"
        return int(PROBE["nvml"][key]["v"])

    def nvmlDeviceGetMemoryBusWidth(self, h: _Handle) -> int:
        self._call("nvmlDeviceGetMemoryBusWidth", h)
        return int(PROBE["nvml"]["bus_width"]["v"])

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: _Handle) -> int:
        self._call("nvmlDeviceGetCurrentClocksEventReasons", h)
        return int(PROBE["snapshots"][self.load()]["reasons"])

    def nvmlDeviceGetPcieThroughput(self, h: _Handle, counter: int) -> int:
        self._call("nvmlDeviceGetPcieThroughput", h)
        return int(PROBE["nvml"]["pcie_tx_KBps"]["v"])

    def nvmlDeviceGetNvLinkState(self, h: _Handle, link: int) -> int:
        self._call("nvmlDeviceGetNvLinkState", h)
        raise NVMLError_NotSupported

    def nvmlDeviceGetFieldValues(self, h: _Handle, ids: list[int]) -> list[SimpleNamespace]:
        """PCIe byte counters grow at the load's GPM PCIe rate (32-bit, wrapping); NVLink
        fields answer ret 3 (single-GPU H200)."""
        self._call("nvmlDeviceGetFieldValues", h)
        self.field_ids_asked.append(tuple(ids))
        by_id = {v: k for k, v in FIELD_IDS.items()}
        out = []
        for fid in ids:
            name = by_id.get(fid, "")
            rec = PROBE["field_values"].get(name, {"ret": 3, "type": 0, "val": 0})
            val = int(rec["val"])
            if rec["ret"] == 0 and "PCIE_COUNT" in name:
                key = "PCIE_TX_PER_SEC" if name.endswith("TX_BYTES") else "PCIE_RX_PER_SEC"
                val = (val + int(self._integral(key, self._now(), self._gpm) * 2**20)) % 2**32
            value = SimpleNamespace(dVal=float(val), uiVal=val, ulVal=val, ullVal=val,
                                    sllVal=val, siVal=val, usVal=val)
            out.append(SimpleNamespace(fieldId=fid, nvmlReturn=rec["ret"],
                                       valueType=rec["type"], value=value))
        return out

    def _procs(self) -> tuple[tuple[int, int, int], ...]:
        return self.config.procs if self._now() >= self.config.procs_after_s else ()

    def nvmlDeviceGetComputeRunningProcesses(self, h: _Handle) -> list[SimpleNamespace]:
        self._call("nvmlDeviceGetComputeRunningProcesses", h)
        return [SimpleNamespace(pid=pid, usedGpuMemory=used)
                for g, pid, used in self._procs() if g == h.index]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h: _Handle) -> list[SimpleNamespace]:
        self._call("nvmlDeviceGetGraphicsRunningProcesses", h)
        return []

    # -- MIG
    def nvmlDeviceGetMigMode(self, h: _Handle) -> tuple[int, int]:
        self._call("nvmlDeviceGetMigMode", h)
        on = int(bool(self.config.mig_instances))
        return on, on

    def nvmlDeviceGetMaxMigDeviceCount(self, h: _Handle) -> int:
        self._call("nvmlDeviceGetMaxMigDeviceCount", h)
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h: _Handle, k: int) -> _Handle:
        self._call("nvmlDeviceGetMigDeviceHandleByIndex", h)
        if k >= len(self.config.mig_instances):
            raise NVMLError(6)
        return _Handle(h.index, self.config.mig_instances[k])

    def nvmlDeviceGetGpuInstanceId(self, mig: _Handle) -> int:
        self._call("nvmlDeviceGetGpuInstanceId", mig)
        assert mig.mig is not None
        return mig.mig

    # -- GPM
    def nvmlGpmQueryDeviceSupport(self, h: _Handle) -> SimpleNamespace:
        self._call("nvmlGpmQueryDeviceSupport", h)
        return SimpleNamespace(**PROBE["nvml"]["gpm_support"]["v"])

    def nvmlGpmSampleAlloc(self) -> _Sample:
        self._call("nvmlGpmSampleAlloc")
        return _Sample()

    def nvmlGpmSampleFree(self, s: _Sample) -> None:
        self._call("nvmlGpmSampleFree")
        s.freed = True

    @staticmethod
    def _gpm(load: str) -> dict[str, Any]:
        values: dict[str, Any] = PROBE["gpm"][load]
        return values

    def _fill(self, s: _Sample) -> None:
        now = self._now()
        s.t = now
        s.integrals = {name: self._integral(name, now, self._gpm) for name in GPM_IDS}

    def nvmlGpmSampleGet(self, h: _Handle, s: _Sample) -> None:
        self._call("nvmlGpmSampleGet", h)
        self._handle(h)
        self._fill(s)

    def nvmlGpmMigSampleGet(self, h: _Handle, gpu_instance: int, s: _Sample) -> None:
        self._call("nvmlGpmMigSampleGet", h)
        if gpu_instance not in self.config.mig_instances:
            raise NVMLError(6)
        self._fill(s)

    def nvmlGpmMetricsGet(self, get: _MetricsGet) -> _MetricsGet:
        """Each metric: (∫ at sample 2 − ∫ at sample 1) / the time between them."""
        self._call("nvmlGpmMetricsGet")
        s1, s2 = get.sample1, get.sample2
        span = s2.t - s1.t
        self.gpm_windows_s.append(span)
        names = {v: k for k, v in GPM_IDS.items()}
        nan = self.config.gpm_nan_every
        for m in get.metrics[:get.numMetrics]:
            name = names.get(m.metricId, "")
            if not name or name in self.config.gpm_unsupported:
                m.nvmlReturn, m.value = 3, 0.0
            elif nan and name == nan[0] and len(self.gpm_windows_s) % nan[1] == 0:
                m.nvmlReturn, m.value = 0, math.nan  # as the H200 did for DRAM_BW_UTIL
            elif span <= 0:
                m.nvmlReturn, m.value = 0, math.nan
            else:
                m.nvmlReturn = 0
                m.value = (s2.integrals[name] - s1.integrals[name]) / span
        return get
