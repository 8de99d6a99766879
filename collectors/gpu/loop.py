"""The GPU collector's sampling thread: ticks at absolute deadlines, journals each tick.

Every ``interval_s`` (deadlines ``t0 + k × interval``; a tick missed because the previous one
overran is skipped and counted, never bunched up) it reads each watched GPU
(:func:`collectors.gpu.sampler.read_sample`; the slow energy counter every ~0.5 s), a GPM
window per GPU (per GPU instance under MIG) once :func:`collectors.gpu.gpm.gpm_every` periods
(less 10 ms of scheduling slack) have passed since the last GPM sample, and once a second the
GPU memory of
the engine's processes, which also finds GPUs an engine started using late. The engine's
process list (``/proc``) is read every second for the first 10 s, then every 5 s. One JSON
line per tick goes to ``gpu/journal.jsonl``; the live view's values go to shared memory.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import orjson

from collectors.base import CollectContext
from collectors.gpu.devices import Watched, choose, open_device, process_memory
from collectors.gpu.gpm import GpmStream, gpm_every
from collectors.gpu.nvml_access import ReadGuard
from collectors.gpu.sampler import read_sample
from servescope.records.gpu import GpmSample, GpuProcessSample, GpuSample
from servescope.rundir.gpu_tables import GPU_JOURNAL, row
from servescope.rundir.journal import JournalWriter

__all__ = ["LIVE_KEYS", "SamplingLoop"]

LIVE_KEYS = ("gpu_sm_util_frac", "gpu_dram_bw_frac", "gpu_tensor_frac", "gpu_util_frac",
             "gpu_power_w", "gpu_mem_used_bytes")
_PROC_EVERY_NS = 1_000_000_000
_PIDS_EARLY_S, _PIDS_LATE_EVERY_NS = 10.0, 5_000_000_000
GPM_SLACK_NS = 10_000_000  # a GPM window may be this much shorter than its nominal length
ENERGY_EVERY_S = 0.5  # the energy counter costs 3.2 ms a read on the H200: not every tick
_LIVE_GPM = {"sm_util": 0, "dram_bw_util": 1, "any_tensor_util": 2}


class SamplingLoop:
    """Samples ``ctx``'s engine GPUs in a thread until :meth:`stop`."""

    def __init__(self, nvml: Any, ctx: CollectContext, interval_s: float, live: Any) -> None:
        self.nvml, self.ctx, self.live = nvml, ctx, live
        self.interval_s = interval_s
        self.every = gpm_every(interval_s)
        self.energy_every = max(1, math.ceil(ENERGY_EVERY_S / interval_s - 1e-9))
        count = int(nvml.nvmlDeviceGetCount())
        self.guards = {i: ReadGuard(nvml) for i in range(count)}
        self.loop_guard = ReadGuard(nvml)  # failures not of one GPU (a tick, the journal)
        self.watched: dict[int, Watched] = {}
        self.streams: dict[int, list[GpmStream]] = {}
        self.pids: tuple[int, ...] = ctx.engine_pids()
        self.started_ns = time.monotonic_ns()
        self.spacing_ns: list[int] = []
        self.samples = self.gpm_rows = self.process_rows = self.skipped_ticks = 0
        self.journal = JournalWriter(ctx.run_dir / GPU_JOURNAL, stop_on_error=False)
        self._add(choose(nvml, self.guards, self.pids, ctx.engine.cuda_visible_devices))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-sampler", daemon=True)

    # -- which GPUs
    def _add(self, found: dict[int, str]) -> None:
        for index, why in found.items():
            w = self.watched.get(index)
            if w is not None:
                if why.startswith("engine process") and not w.facts.why_watched.startswith(
                        "engine process"):
                    w.facts = _with_why(w, why)
                continue
            w = open_device(self.nvml, index, why, self.guards[index])
            if w is None:
                continue
            self.watched[index] = w
            if w.facts.gpm_supported:
                self.streams[index] = [GpmStream(self.nvml, w.handle, w.guard, gi)
                                       for gi in (w.mig_instances or (None,))]

    def _processes(self, t_ns: int) -> list[list[Any]]:
        """GPU memory of the engine's processes on every GPU; GPUs found in use are added."""
        if self.ctx.engine.pid is not None:
            early = t_ns - self.started_ns < _PIDS_EARLY_S * 1e9
            if early or (t_ns - self.started_ns) % _PIDS_LATE_EVERY_NS < _PROC_EVERY_NS:
                self.pids = self.ctx.engine_pids()
        wanted, rows, found = set(self.pids), [], {}
        for index, guard in self.guards.items():
            w = self.watched.get(index)
            handle = w.handle if w is not None else guard.read(
                "handle", self.nvml.nvmlDeviceGetHandleByIndex, index)
            if handle is None or not wanted:
                continue
            mem = process_memory(self.nvml, handle, guard)
            hits = sorted(wanted & set(mem))
            if hits:
                found[index] = "engine process " + ", ".join(str(p) for p in hits)
            rows += [row(GpuProcessSample(t_ns, index, pid, mem[pid])) for pid in hits]
        self._add(found)
        return rows

    # -- the thread
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for streams in self.streams.values():
            for s in streams:
                s.close()
        self.journal.close()

    def _run(self) -> None:
        step = round(self.interval_s * 1e9)
        t0 = time.monotonic_ns()
        k, last_tick, next_proc = 0, -1, t0
        # a GPM window is at least `every` periods less 10 ms: a tick that ran late and the
        # on-time one after it are closer than a period; the window then waits a tick
        gpm_gap = self.every * step - GPM_SLACK_NS
        last_gpm = t0 - gpm_gap
        while not self._stop.is_set():
            delay = (t0 + k * step - time.monotonic_ns()) / 1e9
            if delay > 0 and self._stop.wait(delay):
                break
            tick = time.monotonic_ns()
            if last_tick >= 0:
                self.spacing_ns.append(tick - last_tick)
            last_tick = tick
            procs = tick >= next_proc
            if procs:
                next_proc = tick + _PROC_EVERY_NS
            gpm = tick - last_gpm >= gpm_gap
            if gpm:
                last_gpm = tick
            try:
                self._tick(tick, gpm=gpm, procs=procs, energy=k % self.energy_every == 0)
            except Exception as exc:  # noqa: BLE001 - counted; the next tick goes on
                self.loop_guard.error("tick", f"{type(exc).__name__}: {exc}")
            k += 1
            late = time.monotonic_ns() - (t0 + k * step)
            if late > 0:  # overran the next deadline: skip, never bunch up
                missed = late // step + 1
                self.skipped_ticks += missed
                k += missed

    def _tick(self, tick: int, *, gpm: bool, procs: bool, energy: bool) -> None:
        line: dict[str, Any] = {"t": tick}
        samples = [read_sample(self.nvml, w, energy=energy) for w in self.watched.values()]
        line["s"] = [row(s) for s in samples]
        self.samples += len(samples)
        windows: list[GpmSample] = []
        if gpm:
            for index, streams in self.streams.items():
                for s in streams:
                    got = s.take(time.monotonic_ns())
                    if got is not None:
                        t1, t2, values = got
                        windows += [GpmSample(t1, t2, index, s.gpu_instance, mid, name, v)
                                    for mid, name, v in values]
            line["g"] = [row(g) for g in windows]
            self.gpm_rows += len(windows)
        if procs:
            line["p"] = self._processes(tick)
            self.process_rows += len(line["p"])
        if not self.journal.write(orjson.dumps(line)):
            self.loop_guard.error("journal", str(self.journal.error))
        self._publish(samples, windows)

    def _publish(self, samples: list[GpuSample], windows: list[GpmSample]) -> None:
        """The live view's values: GPM means over the GPUs (instances), NVML utilization
        mean, power and memory sums; NaN where nothing was read."""
        vals = [math.nan] * len(LIVE_KEYS)
        if windows:
            for name, i in _LIVE_GPM.items():
                got = [g.value / 100.0 for g in windows if g.metric == name]
                if got:
                    vals[i] = sum(got) / len(got)
        else:
            vals[:3] = [self.live[i] for i in range(3)]  # keep the last window's
        util = [s.util_gpu_frac for s in samples if s.util_gpu_frac is not None]
        power = [s.power_w for s in samples if s.power_w is not None]
        mem = [s.mem_used_bytes for s in samples if s.mem_used_bytes is not None]
        vals[3] = sum(util) / len(util) if util else math.nan
        vals[4] = sum(power) if power else math.nan
        vals[5] = float(sum(mem)) if mem else math.nan
        for i, v in enumerate(vals):
            self.live[i] = v
        self.live[len(LIVE_KEYS)] = 1.0

    @property
    def gpm_windows(self) -> int:
        return sum(s.windows for streams in self.streams.values() for s in streams)

    def gpm_nonfinite(self) -> tuple[dict[str, int], str]:
        """GPM metric → windows whose value was not finite, and the first such value."""
        counts: dict[str, int] = {}
        example = ""
        for streams in self.streams.values():
            for s in streams:
                for name, n in s.nonfinite.items():
                    counts[name] = counts.get(name, 0) + n
                example = example or s.nonfinite_example
        return counts, example


def _with_why(w: Watched, why: str) -> Any:
    import dataclasses

    return dataclasses.replace(w.facts, why_watched=why)
