"""The GPU's time series for the report's panels, from the GPU collector's raw rows.

:func:`gpu_series` reads ``gpu/devices.json``, ``gpu/samples.parquet`` and ``gpu/gpm.parquet``
(servescope/records/gpu.py) and returns, per GPU and per metric, the values over one window
of the run's monotonic clock, with times in seconds since ``origin_ns`` (the report's time
zero: its first measured send). Units are in the metric names (:data:`METRICS`).

Reduction (the page must stay small): a series with at most ``max_points`` samples in the
window is every sample; a longer one is cut into ``max_points`` equal bins over the window
and each bin is drawn at its centre as the mean of its samples (memory used: the largest, so
a peak is never averaged away); an empty bin is a gap. :attr:`Series.bin_s` says which (0.0:
every sample). A GPM value covers its window [t_start, t_end] and is placed at its middle.

Throttle periods (:class:`ThrottleSpan`) come from every NVML sample, not the reduced ones:
a sample whose clock-event reasons have a cap bit (:data:`THROTTLE_REASONS`; 0x1 "GPU idle"
is not one) opens or extends a span to the next sample's time; consecutive throttled
samples merge into one span naming the union of their reasons.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analyzers.timeline import FloatArray
from servescope.records.gpu import GpuDeviceFacts
from servescope.rundir.layout import GPM_FILE, GPU_DEVICES_FILE, GPU_SAMPLES_FILE

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["METRICS", "THROTTLE_MASK", "THROTTLE_REASONS", "GpuSeries", "Series",
           "ThrottleSpan", "gpu_series", "series_of", "throttle_reasons"]

# metric name -> where it comes from: ("gpm", GPM metric, scale) or ("nvml", column, scale)
METRICS: dict[str, tuple[str, str, float]] = {
    "sm_busy_frac": ("gpm", "sm_util", 0.01),
    "sm_occupancy_frac": ("gpm", "sm_occupancy", 0.01),
    "dram_bw_peak_frac": ("gpm", "dram_bw_util", 0.01),
    "tensor_active_frac": ("gpm", "any_tensor_util", 0.01),
    "nvml_util_frac": ("nvml", "util_gpu_frac", 1.0),
    "power_w": ("nvml", "power_w", 1.0),
    "sm_clock_mhz": ("nvml", "sm_clock_mhz", 1.0),
    "mem_used_bytes": ("nvml", "mem_used_bytes", 1.0),
}
# also: "dram_bw_bytes_per_s" = dram_bw_peak_frac × the device's peak, where devices.json has it
_MAX_REDUCED = frozenset({"mem_used_bytes"})

# NVML clock-event reason bits that mean a cap held the clock down (0x1 idle is not one);
# the bits are analyzers.gpu.figures.THROTTLE_BITS (pynvml's nvmlClocksEventReason*), the
# names the report shows
THROTTLE_REASONS: dict[int, str] = {0x4: "SW power cap", 0x8: "HW slowdown",
                                    0x20: "SW thermal", 0x40: "HW thermal",
                                    0x80: "HW power brake"}
THROTTLE_MASK = sum(THROTTLE_REASONS)
MAX_SPANS = 200


@dataclass(frozen=True, slots=True)
class Series:
    """One metric of one GPU: ``value[i]`` at ``t_s[i]`` seconds since the origin."""

    gpu_index: int
    metric: str  # a METRICS key or "dram_bw_bytes_per_s"
    t_s: FloatArray
    value: FloatArray  # NaN: an empty bin (a gap)
    samples: int  # raw samples in the window
    bin_s: float  # 0.0: every sample; else the mean (max for memory) per bin this wide


@dataclass(frozen=True, slots=True)
class ThrottleSpan:
    gpu_index: int
    start_s: float
    end_s: float
    reasons: tuple[str, ...]  # THROTTLE_REASONS names, in bit order


@dataclass(frozen=True, slots=True)
class GpuSeries:
    """Every GPU series of one run over one window (:func:`gpu_series`)."""

    devices: tuple[GpuDeviceFacts, ...]
    series: tuple[Series, ...]
    throttle: tuple[ThrottleSpan, ...]
    sample_period_s: dict[int, float]  # median real spacing of the NVML samples, per GPU
    gpm_period_s: dict[int, float]  # median GPM window length, per GPU (absent: no GPM)
    warnings: tuple[str, ...]

    def get(self, metric: str, gpu_index: int) -> Series | None:
        return next((s for s in self.series
                     if s.metric == metric and s.gpu_index == gpu_index), None)

    def of(self, metric: str) -> tuple[Series, ...]:
        """The metric's series, one per GPU that has it, by GPU index."""
        return tuple(sorted((s for s in self.series if s.metric == metric),
                            key=lambda s: s.gpu_index))

    def device(self, gpu_index: int) -> GpuDeviceFacts | None:
        return next((d for d in self.devices if d.gpu_index == gpu_index), None)


def throttle_reasons(bits: int) -> tuple[str, ...]:
    """The cap reasons set in an NVML clock-event bitmask (idle and others left out)."""
    return tuple(name for bit, name in THROTTLE_REASONS.items() if bits & bit)


def _devices(path: Path) -> tuple[GpuDeviceFacts, ...]:
    """devices.json: a list of GpuDeviceFacts objects (or ``{"devices": [...]}``)."""
    raw = json.loads(path.read_text())
    rows = raw.get("devices", []) if isinstance(raw, dict) else raw
    fields = GpuDeviceFacts.__dataclass_fields__
    out = []
    for r in rows:
        kw: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v)
                              for k, v in r.items() if k in fields}
        out.append(GpuDeviceFacts(**kw))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _Window:
    origin_ns: int
    t0_ns: int
    t1_ns: int
    max_points: int

    def rel_s(self, t_ns: np.ndarray) -> FloatArray:
        return (t_ns - self.origin_ns).astype(np.float64) / 1e9


def _reduce(w: _Window, gpu: int, metric: str, t_ns: np.ndarray,
            v: np.ndarray) -> Series | None:
    keep = (t_ns >= w.t0_ns) & (t_ns <= w.t1_ns) & np.isfinite(v)
    t_ns, v = t_ns[keep], v[keep]
    if t_ns.size == 0:
        return None
    order = np.argsort(t_ns, kind="stable")
    t_ns, v = t_ns[order], v[order]
    rel = w.rel_s(t_ns)
    n = w.max_points
    if t_ns.size <= n:
        return Series(gpu, metric, rel, v.astype(np.float64), int(t_ns.size), 0.0)
    edges = np.linspace((w.t0_ns - w.origin_ns) / 1e9, (w.t1_ns - w.origin_ns) / 1e9, n + 1)
    idx = np.clip(np.searchsorted(edges, rel, side="right") - 1, 0, n - 1)
    count = np.bincount(idx, minlength=n).astype(np.float64)
    if metric in _MAX_REDUCED:
        out = np.full(n, -np.inf)
        np.maximum.at(out, idx, v)
        out[count == 0] = np.nan
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.bincount(idx, weights=v, minlength=n) / count
    return Series(gpu, metric, (edges[:-1] + edges[1:]) / 2, out, int(t_ns.size),
                  float(edges[1] - edges[0]))


def _spans(w: _Window, gpu: int, t_ns: np.ndarray, bits: np.ndarray) -> list[ThrottleSpan]:
    order = np.argsort(t_ns, kind="stable")
    t_ns, bits = t_ns[order], bits[order]
    if t_ns.size == 0:
        return []
    step = int(np.median(np.diff(t_ns))) if t_ns.size > 1 else 0
    ends = np.append(t_ns[1:], t_ns[-1] + step)
    capped = (bits & THROTTLE_MASK) != 0
    spans: list[ThrottleSpan] = []
    i = 0
    while i < t_ns.size:
        if not capped[i]:
            i += 1
            continue
        j, union = i, 0
        while j < t_ns.size and capped[j]:
            union |= int(bits[j])
            j += 1
        s, e = max(int(t_ns[i]), w.t0_ns), min(int(ends[j - 1]), w.t1_ns)
        if e > s:
            spans.append(ThrottleSpan(gpu, (s - w.origin_ns) / 1e9, (e - w.origin_ns) / 1e9,
                                      throttle_reasons(union)))
        i = j
    return spans


def _merge_spans(spans: list[ThrottleSpan], limit: int) -> list[ThrottleSpan]:
    """At most ``limit`` spans: the closest neighbours (same GPU) merged first."""
    while len(spans) > limit:
        gaps = [(spans[k + 1].start_s - spans[k].end_s, k) for k in range(len(spans) - 1)
                if spans[k].gpu_index == spans[k + 1].gpu_index]
        if not gaps:
            return spans[:limit]
        _, k = min(gaps)
        a, b = spans[k], spans[k + 1]
        spans[k:k + 2] = [ThrottleSpan(a.gpu_index, a.start_s, b.end_s, tuple(
            n for n in THROTTLE_REASONS.values() if n in a.reasons or n in b.reasons))]
    return spans


def _median_step_s(t_ns: np.ndarray) -> float:
    if t_ns.size < 2:
        return math.nan
    return float(np.median(np.diff(np.sort(t_ns)))) / 1e9


@dataclass(slots=True)
class _Acc:
    series: list[Series]
    spans: list[ThrottleSpan]
    periods: dict[int, float]
    gpm_periods: dict[int, float]
    warnings: list[str]


def _nvml(w: _Window, rows_all: pd.DataFrame, acc: _Acc) -> None:
    whole = rows_all[rows_all["mig_gpu_instance"].isna()]  # whole GPUs (MIG: the figures)
    for gpu in sorted(int(g) for g in whole["gpu_index"].unique()):
        rows = whole[whole["gpu_index"].to_numpy() == gpu]
        t = rows["t_ns"].to_numpy(np.int64)
        acc.periods[gpu] = _median_step_s(t)
        for metric, (src, col, scale) in METRICS.items():
            if src == "nvml":
                v = rows[col].to_numpy(np.float64, na_value=np.nan) * scale
                if (s := _reduce(w, gpu, metric, t, v)) is not None:
                    acc.series.append(s)
        bits = rows["clock_event_reasons"].to_numpy(np.float64, na_value=np.nan)
        ok = np.isfinite(bits)
        acc.spans += _spans(w, gpu, t[ok], bits[ok].astype(np.int64))


def _gpm(w: _Window, rows_all: pd.DataFrame, acc: _Acc) -> None:
    whole = rows_all[rows_all["mig_gpu_instance"].isna()]
    by_source = {col: m for m, (src, col, _) in METRICS.items() if src == "gpm"}
    for gpu in sorted(int(g) for g in whole["gpu_index"].unique()):
        mine = whole[whole["gpu_index"].to_numpy() == gpu]
        for name, metric in by_source.items():
            rows = mine[mine["metric"].to_numpy() == name]
            if rows.empty:
                continue
            start = rows["t_start_ns"].to_numpy(np.int64)
            end = rows["t_end_ns"].to_numpy(np.int64)
            acc.gpm_periods.setdefault(gpu, float(np.median(end - start)) / 1e9)
            v = rows["value"].to_numpy(np.float64) * METRICS[metric][2]
            if (s := _reduce(w, gpu, metric, start + (end - start) // 2, v)) is not None:
                acc.series.append(s)


def _part(what: str, rows: pd.DataFrame | None, fill: Callable[[pd.DataFrame], None],
          acc: _Acc) -> None:
    if rows is None or rows.empty:
        return
    try:
        fill(rows)
    except (ValueError, KeyError, TypeError) as e:
        acc.warnings.append(f"the {what} samples could not be plotted "
                            f"({type(e).__name__}: {e})")


def series_of(devices: Sequence[GpuDeviceFacts], samples: pd.DataFrame | None,
              gpm: pd.DataFrame | None, *, origin_ns: int, t0_ns: int, t1_ns: int,
              max_points: int = 600) -> GpuSeries | None:
    """The series of the NVML ``samples`` and ``gpm`` rows (GpuSample / GpmSample columns)
    over [``t0_ns``, ``t1_ns``], times in seconds since ``origin_ns``; None when there are
    none in the window."""
    w = _Window(origin_ns, t0_ns, t1_ns, max_points)
    acc = _Acc([], [], {}, {}, [])
    _part("NVML", samples, lambda df: _nvml(w, df, acc), acc)
    _part("GPM", gpm, lambda df: _gpm(w, df, acc), acc)
    by_gpu = {d.gpu_index: d for d in devices}
    for s in [s for s in acc.series if s.metric == "dram_bw_peak_frac"]:
        d = by_gpu.get(s.gpu_index)
        if d is not None and d.peak_dram_bytes_per_s:
            acc.series.append(Series(s.gpu_index, "dram_bw_bytes_per_s", s.t_s,
                                     s.value * d.peak_dram_bytes_per_s, s.samples, s.bin_s))
    if not acc.series and not acc.warnings:
        return None
    acc.spans.sort(key=lambda x: (x.gpu_index, x.start_s))
    return GpuSeries(tuple(devices), tuple(acc.series),
                     tuple(_merge_spans(acc.spans, MAX_SPANS)), acc.periods, acc.gpm_periods,
                     tuple(acc.warnings))


def gpu_series(run_dir: str | Path, origin_ns: int, t0_ns: int, t1_ns: int, *,
               max_points: int = 600) -> GpuSeries | None:
    """:func:`series_of` the files of the run at ``run_dir``; None when it has no GPU
    samples. A file that cannot be read is a warning in the result."""
    import pandas as pd

    root = Path(run_dir)
    if not (root / GPU_SAMPLES_FILE).exists() and not (root / GPM_FILE).exists():
        return None
    warnings: list[str] = []
    devices: tuple[GpuDeviceFacts, ...] = ()
    tables: dict[str, pd.DataFrame | None] = {}
    try:
        if (root / GPU_DEVICES_FILE).exists():
            devices = _devices(root / GPU_DEVICES_FILE)
    except (OSError, ValueError, TypeError, AttributeError) as e:
        warnings.append(f"{GPU_DEVICES_FILE} unreadable ({e}): no device names or peaks")
    for name in (GPU_SAMPLES_FILE, GPM_FILE):
        try:
            tables[name] = pd.read_parquet(root / name) if (root / name).exists() else None
        except (OSError, ValueError) as e:
            warnings.append(f"{name} unreadable ({type(e).__name__}: {e})")
            tables[name] = None
    out = series_of(devices, tables[GPU_SAMPLES_FILE], tables[GPM_FILE], origin_ns=origin_ns,
                    t0_ns=t0_ns, t1_ns=t1_ns, max_points=max_points)
    if out is None:
        return None if not warnings else GpuSeries(devices, (), (), {}, {}, tuple(warnings))
    return dataclasses.replace(out, warnings=(*warnings, *out.warnings))
