"""Hopper GPM metrics over windows between two GPM samples, for one GPU or GPU instance.

GPM counts in hardware; a metric is the activity between two samples. :class:`GpmStream`
keeps two sample buffers, takes one sample per GPM tick into the older buffer and computes
the metrics for the window between it and the previous sample. NVML wants ≳100 ms between
the two samples, so a window spans :func:`gpm_every` sampling periods: the smallest whole
number of them that is ≥ 100 ms (interval 0.1 s: every tick; 0.05 s: every second tick).
The sampling loop takes the next GPM sample once that much time, less 10 ms of scheduling
slack, has really passed (after a tick that ran late, the window waits one more tick), so
every window is ≥ 90 ms of real time. Each window is recorded with both samples' real times.

A metric NVML answers NotSupported (ret 3) for is recorded once as ``gpm_<name>`` and not
asked again; other failures are counted per metric. A value NVML returns as success but not
finite (seen on the H200: ``dram_bw_util`` NaN/inf in 3 of ~60 windows of a copy-then-GEMM
run) is no reading for that window: its row is left out and counted in ``nonfinite``.
"""

from __future__ import annotations

import math
from typing import Any

from collectors.gpu.nvml_access import ReadGuard

__all__ = ["GPM_METRICS", "GPM_MIN_WINDOW_S", "GpmStream", "gpm_every"]

GPM_MIN_WINDOW_S = 0.1
# NVML_GPM_METRIC_<NAME>; recorded lower case (sm_util, dram_bw_util, ...)
GPM_METRICS = ("SM_UTIL", "SM_OCCUPANCY", "DRAM_BW_UTIL", "ANY_TENSOR_UTIL",
               "HMMA_TENSOR_UTIL", "IMMA_TENSOR_UTIL", "DFMA_TENSOR_UTIL", "DMMA_TENSOR_UTIL",
               "FP16_UTIL", "FP32_UTIL", "FP64_UTIL", "INTEGER_UTIL", "GRAPHICS_UTIL",
               "PCIE_TX_PER_SEC", "PCIE_RX_PER_SEC", "NVLINK_TOTAL_RX_PER_SEC",
               "NVLINK_TOTAL_TX_PER_SEC")
_OK = 0
_NOT_SUPPORTED = 3

Window = tuple[int, int, list[tuple[int, str, float]]]  # t_start_ns, t_end_ns, metrics


def gpm_every(interval_s: float) -> int:
    """Sampling ticks per GPM window: the fewest whose length is ≥ 100 ms."""
    return max(1, math.ceil(GPM_MIN_WINDOW_S / interval_s - 1e-9))


class GpmStream:
    """GPM samples of one GPU (``gpu_instance`` None) or one MIG GPU instance."""

    def __init__(self, nvml: Any, handle: Any, guard: ReadGuard,
                 gpu_instance: int | None = None) -> None:
        self.nvml, self.handle, self.guard = nvml, handle, guard
        self.gpu_instance = gpu_instance
        self.metrics = [(int(getattr(nvml, f"NVML_GPM_METRIC_{m}")), m.lower())
                        for m in GPM_METRICS if hasattr(nvml, f"NVML_GPM_METRIC_{m}")]
        self.windows = 0
        self.nonfinite: dict[str, int] = {}  # metric → windows it had no finite value
        self.nonfinite_example = ""  # the first such value, as text (nan, inf)
        self._bufs: list[Any] = []
        self._prev_t = -1
        self.alive = True
        try:
            self._bufs = [nvml.nvmlGpmSampleAlloc(), nvml.nvmlGpmSampleAlloc()]
        except Exception as exc:  # noqa: BLE001 - no GPM here; the rest goes on
            guard.fail("gpm", exc)
            self.alive = False

    def take(self, t_ns: int) -> Window | None:
        """Take a sample now (``t_ns``: when); the window since the previous one, if any."""
        if not self.alive:
            return None
        cur, prev = self._bufs[1], self._bufs[0]
        try:
            if self.gpu_instance is None:
                self.nvml.nvmlGpmSampleGet(self.handle, cur)
            else:
                self.nvml.nvmlGpmMigSampleGet(self.handle, self.gpu_instance, cur)
        except Exception as exc:  # noqa: BLE001 - counted; the next tick starts afresh
            self.guard.fail("gpm", exc)
            self.alive = "gpm" not in self.guard.unsupported
            self._prev_t = -1
            return None
        t_prev, self._prev_t = self._prev_t, t_ns
        self._bufs.reverse()  # the sample just taken is the next window's start
        if t_prev < 0:
            return None
        values = self._compute(prev, cur)
        if values is None:
            return None
        self.windows += 1
        return t_prev, t_ns, values

    def _compute(self, s1: Any, s2: Any) -> list[tuple[int, str, float]] | None:
        nvml, asked = self.nvml, [m for m in self.metrics
                                  if f"gpm_{m[1]}" not in self.guard.unsupported]
        if not asked:
            return None
        get = nvml.c_nvmlGpmMetricsGet_t()
        get.version = nvml.NVML_GPM_METRICS_GET_VERSION
        get.numMetrics = len(asked)
        get.sample1, get.sample2 = s1, s2
        for j, (mid, _) in enumerate(asked):
            get.metrics[j].metricId = mid
        try:
            nvml.nvmlGpmMetricsGet(get)
        except Exception as exc:  # noqa: BLE001 - counted
            self.guard.fail("gpm_metrics", exc)
            return None
        out: list[tuple[int, str, float]] = []
        for j, (mid, name) in enumerate(asked):
            m = get.metrics[j]
            ret = int(m.nvmlReturn)
            if ret == _OK and math.isfinite(m.value):
                out.append((mid, name, float(m.value)))
            elif ret == _OK:
                self.nonfinite[name] = self.nonfinite.get(name, 0) + 1
                self.nonfinite_example = self.nonfinite_example or repr(float(m.value))
            elif ret == _NOT_SUPPORTED:
                self.guard.mark_unsupported(f"gpm_{name}")
            else:
                self.guard.error(f"gpm_{name}", f"NVML return {ret}")
        return out

    def close(self) -> None:
        for buf in self._bufs:
            try:
                self.nvml.nvmlGpmSampleFree(buf)
            except Exception:  # noqa: BLE001, S112 - freeing at the end; nothing to keep
                continue
        self._bufs = []
        self.alive = False
