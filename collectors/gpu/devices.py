"""Which GPUs the collector watches, and what does not change about each one.

The choice, in order (the first that names a GPU wins; :func:`choose`):

1. the GPUs on which one of the engine's processes holds a context (NVML's compute and
   graphics process lists);
2. the GPUs named by the engine's ``CUDA_VISIBLE_DEVICES`` (indexes, or UUIDs / UUID
   prefixes as CUDA accepts them); an index is taken as NVML's index (CUDA's own order is
   the same under ``CUDA_DEVICE_ORDER=PCI_BUS_ID``);
3. every GPU of the host.

Engines create their CUDA contexts lazily, so the collector asks again every second for the
first seconds and adds GPUs found later (:func:`engine_gpus`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from collectors.gpu.nvml_access import ReadGuard
from servescope.records.gpu import GpuDeviceFacts

__all__ = ["Watched", "choose", "device_count", "engine_gpus", "open_device",
           "parse_visible_devices", "peak_dram_bytes_per_s", "process_memory"]


@dataclass(slots=True)
class Watched:
    """One GPU being sampled: its handle, its read guard and its facts so far."""

    index: int
    handle: Any
    guard: ReadGuard
    facts: GpuDeviceFacts
    # GPU instance id → nothing yet; filled when MIG is on (GPM per GPU instance)
    mig_instances: tuple[int, ...] = ()
    last: dict[str, Any] = field(default_factory=dict)  # the previous reading (counters)


def device_count(nvml: Any) -> int:
    return int(nvml.nvmlDeviceGetCount())


def peak_dram_bytes_per_s(max_mem_clock_mhz: int | None, bus_width_bits: int | None
                          ) -> float | None:
    """HBM peak: max memory clock × 2 (double data rate) × bus width / 8 (H200: 3201 MHz,
    6016 bits → 4.81e12 B/s)."""
    if not max_mem_clock_mhz or not bus_width_bits:
        return None
    return max_mem_clock_mhz * 1e6 * 2 * bus_width_bits / 8


def _text(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def process_memory(nvml: Any, handle: Any, guard: ReadGuard) -> dict[int, int | None]:
    """pid → GPU memory bytes (None when NVML cannot say) of every process with a context
    on the GPU (compute and graphics lists)."""
    out: dict[int, int | None] = {}
    for name, fn in (("compute_processes", "nvmlDeviceGetComputeRunningProcesses"),
                     ("graphics_processes", "nvmlDeviceGetGraphicsRunningProcesses")):
        procs = guard.read(name, getattr(nvml, fn), handle) or []
        for p in procs:
            used = getattr(p, "usedGpuMemory", None)
            out[int(p.pid)] = int(used) if isinstance(used, int) and used >= 0 else None
    return out


def engine_gpus(nvml: Any, guards: dict[int, ReadGuard], pids: Iterable[int]
                ) -> dict[int, str]:
    """GPU index → "engine process PID" for every GPU holding a context of ``pids``."""
    wanted = set(pids)
    found: dict[int, str] = {}
    if not wanted:
        return found
    for index, guard in guards.items():
        handle = guard.read("handle", nvml.nvmlDeviceGetHandleByIndex, index)
        if handle is None:
            continue
        hits = sorted(wanted & set(process_memory(nvml, handle, guard)))
        if hits:
            found[index] = "engine process " + ", ".join(str(p) for p in hits)
    return found


def parse_visible_devices(nvml: Any, text: str, count: int) -> list[int]:
    """NVML indexes named by a ``CUDA_VISIBLE_DEVICES`` value. CUDA stops at the first
    entry it cannot use, and so does this; ``""`` or ``-1`` name none."""
    uuids: list[str] = []
    for i in range(count):
        try:
            uuids.append(_text(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i))))
        except Exception:  # noqa: BLE001 - an unreadable GPU cannot be matched by UUID
            uuids.append("")
    out: list[int] = []
    for raw in text.split(","):
        item = raw.strip()
        if item.lstrip("-").isdigit():
            index = int(item)
            if not 0 <= index < count:
                break
        else:
            key = item if item.startswith(("GPU-", "MIG-")) else f"GPU-{item}"
            matches = [i for i, u in enumerate(uuids) if u and key and u.startswith(key)]
            if len(matches) != 1:
                break
            index = matches[0]
        if index not in out:
            out.append(index)
    return out


def choose(nvml: Any, guards: dict[int, ReadGuard], pids: Iterable[int],
           visible: str | None) -> dict[int, str]:
    """GPU index → why it is watched (see the module's docstring for the order)."""
    found = engine_gpus(nvml, guards, pids)
    if found:
        return found
    count = len(guards)
    if visible is not None:
        named = parse_visible_devices(nvml, visible, count)
        return {i: f"CUDA_VISIBLE_DEVICES={visible}" for i in named}
    return {i: "all GPUs (no engine process on a GPU yet, CUDA_VISIBLE_DEVICES unset)"
            for i in range(count)}


def _mig_instances(nvml: Any, handle: Any, guard: ReadGuard) -> tuple[int, ...]:
    """GPU instance ids when MIG mode is on (the current mode), else ()."""
    mode = guard.read("mig_mode", nvml.nvmlDeviceGetMigMode, handle)
    if not mode or int(mode[0]) != 1:
        return ()
    n = guard.read("mig_count", nvml.nvmlDeviceGetMaxMigDeviceCount, handle) or 0
    ids: list[int] = []
    for k in range(int(n)):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, k)
        except Exception:  # noqa: BLE001, S112 - an empty slot (NotFound) is no error
            continue
        gi = guard.read("mig_gpu_instance", nvml.nvmlDeviceGetGpuInstanceId, mig)
        if gi is not None and int(gi) not in ids:
            ids.append(int(gi))
    return tuple(sorted(ids))


def open_device(nvml: Any, index: int, why: str, guard: ReadGuard) -> Watched | None:
    """The GPU at ``index`` with its facts (None when NVML gives no handle)."""
    handle = guard.read("handle", nvml.nvmlDeviceGetHandleByIndex, index)
    if handle is None:
        return None
    g = guard.read
    mem = g("memory", nvml.nvmlDeviceGetMemoryInfo, handle)
    max_mem = g("max_mem_clock", nvml.nvmlDeviceGetMaxClockInfo, handle, nvml.NVML_CLOCK_MEM)
    bus = g("mem_bus_width", nvml.nvmlDeviceGetMemoryBusWidth, handle)
    limit_mw = g("power_limit", nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
    support = g("gpm_support", nvml.nvmlGpmQueryDeviceSupport, handle)
    migs = _mig_instances(nvml, handle, guard)
    arch = g("arch", nvml.nvmlDeviceGetArchitecture, handle)
    facts = GpuDeviceFacts(
        gpu_index=index, gpu_uuid=_text(g("uuid", nvml.nvmlDeviceGetUUID, handle) or ""),
        name=_text(g("name", nvml.nvmlDeviceGetName, handle) or ""),
        arch=None if arch is None else int(arch),
        memory_total_bytes=None if mem is None else int(mem.total),
        max_sm_clock_mhz=g("max_sm_clock", nvml.nvmlDeviceGetMaxClockInfo, handle,
                           nvml.NVML_CLOCK_SM),
        max_mem_clock_mhz=max_mem, mem_bus_width_bits=bus,
        peak_dram_bytes_per_s=peak_dram_bytes_per_s(max_mem, bus),
        power_limit_w=None if limit_mw is None else limit_mw / 1000.0,
        gpm_supported=bool(getattr(support, "isSupportedDevice", 0)),
        mig_gpu_instances=migs, why_watched=why, unsupported=())
    return Watched(index, handle, guard, facts, migs)
