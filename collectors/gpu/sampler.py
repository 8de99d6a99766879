"""One NVML reading of one GPU (:class:`GpuSample`), the fast path of every tick.

Measured on the H200 (tests/data/gpu/h200_nvml_call_latency.json, median of 50 steady-state
calls): utilization, memory, power, clocks, clock-event reasons, temperature 1–7 µs each; the
field values (PCIe/NVLink counters) 0.3 ms; a GPM sample 32 µs and the GPM metrics of a
window 1.3 ms. Two calls are slow: the energy counter takes 3.2 ms (15.7 ms at worst) on
every call, so it is read only on ``energy`` ticks (about every 0.5 s; ``energy_mj`` is null
in between, which costs nothing for a cumulative counter) and last, after the fast reads;
``nvmlDeviceGetPcieThroughput`` blocks 21 ms for its 20 ms sampling window and is left out.
PCIe rates come instead from NVML's PCIe byte counters (field values
``PCIE_COUNT_TX/RX_BYTES``; the difference between two readings over their real time apart),
and on Hopper and newer also from GPM (``pcie_tx/rx_per_sec``). The counters are 32-bit on
the H200 (value type 1, measured; they wrap at 4 GiB): one wrap between two readings is
undone, so a rate is right up to 4 GiB per sampling period, 43 GB/s at 10 Hz, which is less
than a PCIe Gen5 x16 link carries (~64 GB/s): near-saturated host transfers under-read there,
and GPM's rate, which has no such limit, is the one to trust.
"""

from __future__ import annotations

import time
from typing import Any

from collectors.gpu.devices import Watched
from servescope.records.gpu import GpuSample

__all__ = ["FIELD_IDS", "read_sample"]

# field value name → NVML field id attribute; what each becomes
FIELD_IDS = (("pcie_tx_bytes", "NVML_FI_DEV_PCIE_COUNT_TX_BYTES"),
             ("pcie_rx_bytes", "NVML_FI_DEV_PCIE_COUNT_RX_BYTES"),
             ("nvlink_tx_bytes", "NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX"),
             ("nvlink_rx_bytes", "NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX"))
_VALUE_ATTR = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal",
               6: "usVal"}
_WRAP = {1: 1 << 32, 5: 1 << 32, 6: 1 << 16}  # counters of these value types wrap
_OK, _NOT_SUPPORTED = 0, 3


def _fields(nvml: Any, w: Watched) -> dict[str, tuple[int, int]]:
    """name → (value, value type) of the field values this GPU answers."""
    asked = [(name, int(getattr(nvml, attr))) for name, attr in FIELD_IDS
             if hasattr(nvml, attr) and name not in w.guard.unsupported]
    if not asked:
        return {}
    got = w.guard.read("field_values", nvml.nvmlDeviceGetFieldValues, w.handle,
                       [fid for _, fid in asked])
    out: dict[str, tuple[int, int]] = {}
    for (name, _), v in zip(asked, got or (), strict=False):
        ret = int(getattr(v, "nvmlReturn", _OK))
        if ret == _NOT_SUPPORTED:
            w.guard.mark_unsupported(name)
        elif ret != _OK:
            w.guard.error(name, f"NVML return {ret}")
        else:
            vt = int(v.valueType)
            out[name] = int(getattr(v.value, _VALUE_ATTR.get(vt, "ullVal"))), vt
    return out


def _rate(w: Watched, name: str, now: tuple[int, int] | None, t_ns: int) -> float | None:
    """Bytes per second of a byte counter since this GPU's previous reading."""
    prev = w.last.get(name)
    w.last[name] = None if now is None else (now[0], now[1], t_ns)
    if now is None or prev is None or t_ns <= prev[2]:
        return None
    delta = now[0] - prev[0]
    if delta < 0:
        delta += _WRAP.get(now[1], 0)
    if delta < 0:
        return None
    return float(delta) / ((t_ns - int(prev[2])) / 1e9)


def _clock_reasons(nvml: Any, handle: Any) -> Any:
    """The clock-event reasons (older bindings call them throttle reasons; a binding with
    neither raises AttributeError, which the guard records as unsupported)."""
    fn = (getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
          or nvml.nvmlDeviceGetCurrentClocksThrottleReasons)
    return fn(handle)


def read_sample(nvml: Any, w: Watched, *, energy: bool = True) -> GpuSample:
    """Read ``w`` now; ``t_ns`` is taken just before the first call (the run's clock); the
    energy counter only when ``energy`` (it is slow), after the rest."""
    g, h = w.guard.read, w.handle
    t_ns = time.monotonic_ns()
    util = g("utilization", nvml.nvmlDeviceGetUtilizationRates, h)
    mem = g("memory", nvml.nvmlDeviceGetMemoryInfo, h)
    power_mw = g("power", nvml.nvmlDeviceGetPowerUsage, h)
    sm = g("sm_clock", nvml.nvmlDeviceGetClockInfo, h, nvml.NVML_CLOCK_SM)
    mc = g("mem_clock", nvml.nvmlDeviceGetClockInfo, h, nvml.NVML_CLOCK_MEM)
    reasons = g("clock_event_reasons", _clock_reasons, nvml, h)
    temp = g("temperature", nvml.nvmlDeviceGetTemperature, h, nvml.NVML_TEMPERATURE_GPU)
    fields = _fields(nvml, w)
    nv_tx, nv_rx = fields.get("nvlink_tx_bytes"), fields.get("nvlink_rx_bytes")
    energy_mj = g("energy", nvml.nvmlDeviceGetTotalEnergyConsumption, h) if energy else None
    return GpuSample(
        t_ns=t_ns, gpu_index=w.index, gpu_uuid=w.facts.gpu_uuid, mig_gpu_instance=None,
        util_gpu_frac=None if util is None else util.gpu / 100.0,
        util_mem_frac=None if util is None else util.memory / 100.0,
        mem_used_bytes=None if mem is None else int(mem.used),
        mem_total_bytes=None if mem is None else int(mem.total),
        power_w=None if power_mw is None else power_mw / 1000.0,
        energy_mj=None if energy_mj is None else int(energy_mj),
        sm_clock_mhz=sm, mem_clock_mhz=mc,
        clock_event_reasons=None if reasons is None else int(reasons),
        temp_c=temp,
        pcie_tx_bytes_per_s=_rate(w, "pcie_tx_bytes", fields.get("pcie_tx_bytes"), t_ns),
        pcie_rx_bytes_per_s=_rate(w, "pcie_rx_bytes", fields.get("pcie_rx_bytes"), t_ns),
        nvlink_tx_bytes_total=None if nv_tx is None else nv_tx[0] * 1024,
        nvlink_rx_bytes_total=None if nv_rx is None else nv_rx[0] * 1024)
