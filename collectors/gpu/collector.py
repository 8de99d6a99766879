"""The ``gpu`` collector: NVML and Hopper GPM telemetry of the engine's GPUs, in a child
process of its own (:class:`collectors.child.ChildRunner`).

- ``validate_environment()`` (servescope's process): nvidia-ml-py must import, else
  :class:`CollectorUnavailable` naming ``pip install 'servescope[gpu]'``.
- ``skip_reason()`` (servescope's process, once the engine is ready): NVML is initialised
  and shut down once (a few ms); no driver or no GPU is the one warning
  :data:`NO_GPU` and the run goes on without this collector.
- ``start()`` (the child): chooses the GPUs (:mod:`collectors.gpu.devices`) and starts the
  sampling thread (:mod:`collectors.gpu.loop`).
- ``stop()`` (the child): ends the thread, writes ``gpu/devices.json`` and finalizes the
  journal into ``gpu/samples.parquet``, ``gpu/gpm.parquet`` and ``gpu/processes.parquet``;
  returns the counts, among them the real sampling period (median and p99 spacing, ms).

Option (``ctx.options["gpu"]``): ``interval_s`` (0.1 s; 0.01–60). Tests pass their own NVML
(``GpuCollector(nvml=provider)``, a picklable callable returning a pynvml-like module).
"""

from __future__ import annotations

import math
import multiprocessing as mp
from collections.abc import Mapping
from typing import Any

from collectors.base import CollectContext, CollectorStats, CollectorUnavailable
from collectors.gpu.loop import LIVE_KEYS, SamplingLoop
from collectors.gpu.nvml_access import NvmlProvider, import_pynvml
from servescope.rundir.gpu_tables import finalize_gpu

__all__ = ["NO_GPU", "GpuCollector"]

NO_GPU = "no NVIDIA GPU/NVML on this machine: gpu collector skipped"
_FINALIZE_BOUND_S = 60.0  # writing the tables of a long run, on a busy machine
_ERROR_CHARS = 300


def _interval(opts: Mapping[str, Any]) -> float:
    unknown = set(opts) - {"interval_s"}
    if unknown:
        raise ValueError(f"unknown gpu option(s): {', '.join(sorted(unknown))}")
    interval = float(opts.get("interval_s", 0.1))
    if not 0.01 <= interval <= 60:
        raise ValueError(f"gpu interval_s must be within 0.01–60 s, not {interval:g}")
    return interval


def _pct_ms(values: list[int], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] / 1e6


class GpuCollector:
    """Samples the engine's GPUs every ``interval_s`` (module docstring)."""

    name = "gpu"
    label = "GPU sampler"

    def __init__(self, nvml: NvmlProvider = import_pynvml) -> None:
        self._provider = nvml
        # the live values, then 1.0 once written: made here so the child shares them
        self._shared = mp.get_context("spawn").Array(
            "d", [math.nan] * len(LIVE_KEYS) + [0.0], lock=False)
        self._loop: SamplingLoop | None = None
        self._nvml: Any = None
        self._ctx: CollectContext | None = None

    # -- in servescope's process
    def validate_environment(self) -> None:
        try:
            self._provider()
        except ImportError as exc:
            raise CollectorUnavailable(
                "the gpu collector needs nvidia-ml-py: pip install 'servescope[gpu]'") from exc

    def skip_reason(self, ctx: CollectContext) -> str:  # noqa: ARG002 - any engine
        try:
            nvml = self._provider()
            nvml.nvmlInit()
        except Exception:  # noqa: BLE001 - no binding, no driver, no GPU: all "skip"
            return NO_GPU
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except Exception:  # noqa: BLE001
            count = 0
        finally:
            try:
                nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001, S110 - nothing was started
                pass
        return "" if count > 0 else NO_GPU

    def stop_bound_s(self, ctx: CollectContext) -> float:
        return _interval(ctx.options_for(self.name)) + _FINALIZE_BOUND_S

    def live_values(self) -> dict[str, float]:
        """The latest GPU figures for the live view; keys with no value are left out."""
        if self._shared[len(LIVE_KEYS)] != 1.0:
            return {}
        return {k: float(self._shared[i]) for i, k in enumerate(LIVE_KEYS)
                if not math.isnan(self._shared[i])}

    # -- in the child
    def start(self, ctx: CollectContext) -> None:
        interval = _interval(ctx.options_for(self.name))
        nvml = self._provider()
        nvml.nvmlInit()  # a failure here is the runner's "did not start: …"
        self._nvml, self._ctx = nvml, ctx
        try:
            self._loop = SamplingLoop(nvml, ctx, interval, self._shared)
        except BaseException:
            nvml.nvmlShutdown()
            raise
        self._loop.start()

    def stop(self) -> CollectorStats:
        loop, ctx = self._loop, self._ctx
        if loop is None or ctx is None:
            return CollectorStats(_zero_counts())
        self._loop = None
        loop.stop()
        problems: list[str] = []
        facts = [_final_facts(w) for w in loop.watched.values()]
        try:
            from servescope.jsonio import write_json
            from servescope.rundir.layout import GPU_DEVICES_FILE

            write_json(ctx.run_dir / GPU_DEVICES_FILE, facts)
        except Exception as exc:  # noqa: BLE001 - reported, never raised into the run
            problems.append(f"gpu/devices.json not written: {exc}")
        rows: list[int] = [0, 0, 0]
        try:
            rows, warnings = finalize_gpu(ctx.run_dir)
            if warnings:
                problems.append(f"{len(warnings)} GPU journal problems; first: {warnings[0]}")
        except Exception as exc:  # noqa: BLE001 - the journal stays for a later read
            problems.append(f"GPU tables not written: {type(exc).__name__}: {exc}")
        try:
            self._nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001, S110 - the end; nothing depends on it
            pass
        counts = _counts(loop, rows)
        if not loop.watched:
            problems.insert(0, "no GPU of the engine found to watch")
        if failed := _failures(loop):
            problems.insert(0, failed)
        return CollectorStats(counts, "; ".join(problems)[:_ERROR_CHARS * 2])


def _zero_counts() -> dict[str, Any]:
    return {"samples": 0, "gpm_windows": 0, "gpm_rows": 0, "process_rows": 0, "gpus": 0,
            "interval_s": None, "gpm_every": None, "period_ms_median": None,
            "period_ms_p99": None, "skipped_ticks": 0, "errors": 0, "errors_by_field": {},
            "unsupported": 0, "unsupported_fields": [], "journal_lost": 0,
            "gpm_nonfinite": {}, "gpm_nonfinite_example": ""}


def _final_facts(w: Any) -> Any:
    import dataclasses

    return dataclasses.replace(w.facts, unsupported=tuple(sorted(w.guard.unsupported)))


def _guards(loop: SamplingLoop) -> list[Any]:
    return [*loop.guards.values(), loop.loop_guard]


def _counts(loop: SamplingLoop, rows: list[int]) -> dict[str, Any]:
    errors: dict[str, int] = {}
    for g in _guards(loop):
        for name, n in g.errors.items():
            errors[name] = errors.get(name, 0) + n
    unsupported = sorted({f for w in loop.watched.values() for f in w.guard.unsupported})
    nonfinite, example = loop.gpm_nonfinite()
    return {"samples": loop.samples, "gpm_windows": loop.gpm_windows,
            "gpm_rows": loop.gpm_rows, "process_rows": loop.process_rows,
            "gpus": len(loop.watched), "interval_s": loop.interval_s,
            "gpm_every": loop.every, "period_ms_median": _pct_ms(loop.spacing_ns, 0.5),
            "period_ms_p99": _pct_ms(loop.spacing_ns, 0.99),
            "skipped_ticks": loop.skipped_ticks, "errors": sum(errors.values()),
            "errors_by_field": errors, "unsupported": len(unsupported),
            "unsupported_fields": unsupported, "journal_lost": loop.journal.lost,
            "gpm_nonfinite": nonfinite, "gpm_nonfinite_example": example, "table_rows": rows}


def _failures(loop: SamplingLoop) -> str:
    """One sentence on the NVML reads that failed ("" when none did)."""
    errors: dict[str, int] = {}
    example: dict[str, str] = {}
    for g in _guards(loop):
        for name, n in g.errors.items():
            errors[name] = errors.get(name, 0) + n
            example.setdefault(name, g.examples.get(name, ""))
    if not errors:
        return ""
    worst = max(errors, key=lambda k: errors[k])
    counts = ", ".join(f"{k} {n}" for k, n in sorted(errors.items(), key=lambda kv: -kv[1]))
    return (f"{sum(errors.values())} NVML reads failed ({counts}); first {worst}: "
            f"{example[worst]}")
