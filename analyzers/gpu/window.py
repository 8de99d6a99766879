"""The GPU figures of one time window: :func:`gpu_figures` (docs/metrics.md, "GPU figures").

Every figure comes from the raw rows the GPU collector wrote: GPM metrics time-weighted over
the GPM windows that overlap the window (each weighted by its overlap), NVML samples taken
inside the window, energy from the cumulative counter interpolated at the window's edges, and
per-request figures from the client's successful requests that ended inside the window.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from analyzers.gpu.figures import (
    CLOCK_EVENT_REASONS,
    THROTTLE_BITS,
    GpuFigures,
    GpuWindowFigures,
    ThrottleShare,
)

if TYPE_CHECKING:
    import pandas as pd

    from analyzers.gpu.load import GpuTables
    from servescope.records.gpu import GpuDeviceFacts

__all__ = ["gpm_time_mean", "gpu_figures", "interpolated_energy_j"]

NAN = math.nan


def _whole_gpu(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the whole GPU (mig_gpu_instance missing); the MIG rows when there are none."""
    mig = df["mig_gpu_instance"]
    whole: pd.DataFrame = df[mig.isna()]
    return whole if len(whole) or df.empty else df


def gpm_time_mean(gpm: pd.DataFrame, metric: str, start_ns: int, end_ns: int) -> tuple[float,
                                                                                         int]:
    """(mean of ``metric``'s values weighted by each GPM window's overlap with [start, end],
    number of windows overlapping); (NaN, 0) when none does. ``gpm``: one GPU's rows."""
    rows = gpm[gpm["metric"].to_numpy() == metric]
    a = rows["t_start_ns"].to_numpy(np.int64)
    b = rows["t_end_ns"].to_numpy(np.int64)
    v = rows["value"].to_numpy(np.float64)
    w = (np.minimum(b, end_ns) - np.maximum(a, start_ns)).astype(np.float64)
    keep = (w > 0) & ~np.isnan(v)
    if not keep.any():
        return NAN, 0
    return float((v[keep] * w[keep]).sum() / w[keep].sum()), int(keep.sum())


def interpolated_energy_j(t_ns: np.ndarray, energy_mj: np.ndarray, start_ns: int,
                          end_ns: int) -> float:
    """Energy over [start, end] from a cumulative counter sampled at ``t_ns``: the counter
    linearly interpolated at both edges, each edge clipped to the samples' span (a window
    wider than the recording counts only what was recorded). A counter that went backwards
    (a driver reset) adds nothing for that step. NaN with fewer than two readings inside
    the span."""
    ok = ~np.isnan(energy_mj)
    t, e = t_ns[ok].astype(np.float64), energy_mj[ok]
    if t.size < 2:
        return NAN
    cum = np.concatenate([[0.0], np.cumsum(np.maximum(np.diff(e), 0.0))])
    lo, hi = max(float(start_ns), t[0]), min(float(end_ns), t[-1])
    if hi <= lo:
        return NAN
    return float(np.interp(hi, t, cum) - np.interp(lo, t, cum)) / 1e3


def _nan_mean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else NAN


def _nan_median(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(np.median(x)) if x.size else NAN


def _nan_max(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.max()) if x.size else NAN


def _f(v: float | int | None) -> float:
    return NAN if v is None else float(v)


def _throttle(reasons: np.ndarray) -> tuple[float, tuple[ThrottleShare, ...]]:
    r = reasons[~np.isnan(reasons)].astype(np.int64)
    if r.size == 0:
        return NAN, ()
    shares = tuple(ThrottleShare(name, bit, float(((r & bit) != 0).mean()))
                   for bit, name in CLOCK_EVENT_REASONS.items() if ((r & bit) != 0).any())
    return float(((r & THROTTLE_BITS) != 0).mean()), shares


def _per_request(ok: pd.DataFrame | None, start_ns: int, end_ns: int) -> tuple[int, int]:
    """(successful requests whose last output arrived in [start, end], their output tokens)."""
    if ok is None or ok.empty:
        return 0, 0
    t = ok["t_last_ns"].to_numpy(np.int64)
    inside = (t >= start_ns) & (t <= end_ns)
    return int(inside.sum()), int(np.nansum(ok["output_tokens"].to_numpy(np.float64)[inside]))


def _one_gpu(tables: GpuTables, index: int, start_ns: int, end_ns: int,
             done: tuple[int, int]) -> GpuWindowFigures:
    dev: GpuDeviceFacts | None = tables.device(index)
    s_all = _whole_gpu(tables.samples[tables.samples["gpu_index"].to_numpy() == index])
    t_all = s_all["t_ns"].to_numpy(np.int64)
    s = s_all[(t_all >= start_ns) & (t_all <= end_ns)]
    g = _whole_gpu(tables.gpm[tables.gpm["gpu_index"].to_numpy() == index])
    sm, n_gpm = gpm_time_mean(g, "sm_util", start_ns, end_ns)
    occ, _ = gpm_time_mean(g, "sm_occupancy", start_ns, end_ns)
    tensor, _ = gpm_time_mean(g, "any_tensor_util", start_ns, end_ns)
    dram, _ = gpm_time_mean(g, "dram_bw_util", start_ns, end_ns)
    peak = _f(dev.peak_dram_bytes_per_s) if dev else NAN
    overlap = g[(g["t_end_ns"].to_numpy(np.int64) > start_ns)
                & (g["t_start_ns"].to_numpy(np.int64) < end_ns)].drop_duplicates("t_start_ns")
    gpm_len = (overlap["t_end_ns"] - overlap["t_start_ns"]).to_numpy(np.float64) / 1e9
    energy = interpolated_energy_j(t_all, s_all["energy_mj"].to_numpy(np.float64),
                                   start_ns, end_ns)
    clock = _nan_median(s["sm_clock_mhz"].to_numpy(np.float64))
    max_clock = _f(dev.max_sm_clock_mhz) if dev else NAN
    throttled, shares = _throttle(s["clock_event_reasons"].to_numpy(np.float64))
    used = _nan_max(s["mem_used_bytes"].to_numpy(np.float64))
    total = _f(dev.memory_total_bytes) if dev else NAN
    if math.isnan(total):
        total = _nan_max(s["mem_total_bytes"].to_numpy(np.float64))
    t_in = s["t_ns"].to_numpy(np.int64)
    n_req, tokens = done
    return GpuWindowFigures(
        gpu_index=index, gpu_uuid=dev.gpu_uuid if dev else "", name=dev.name if dev else "",
        start_ns=start_ns, end_ns=end_ns,
        sm_busy_frac=sm / 100, sm_occupancy_frac=occ / 100, tensor_active_frac=tensor / 100,
        dram_bw_bytes_per_s=dram / 100 * peak, dram_bw_peak_frac=dram / 100,
        peak_dram_bytes_per_s=peak, gpm_windows=n_gpm,
        gpm_period_median_s=_nan_median(gpm_len),
        nvml_util_frac=_nan_mean(s["util_gpu_frac"].to_numpy(np.float64)),
        power_mean_w=_nan_mean(s["power_w"].to_numpy(np.float64)), energy_j=energy,
        sm_clock_median_mhz=clock, max_sm_clock_mhz=max_clock,
        sm_clock_max_frac=clock / max_clock if max_clock > 0 else NAN,
        throttled_frac=throttled, throttle=shares,
        mem_used_max_bytes=used, mem_total_bytes=total,
        mem_used_max_frac=used / total if total > 0 else NAN,
        samples=len(s),
        sample_period_median_s=_nan_median(np.diff(t_in).astype(np.float64)) / 1e9,
        requests_completed=n_req, output_tokens=tokens,
        energy_per_output_token_j=energy / tokens if tokens else NAN,
        energy_per_request_j=energy / n_req if n_req else NAN)


def _sum_or_nan(x: np.ndarray) -> float:
    """The total when every GPU has the figure, else NaN (a partial total would mislead)."""
    return float(x.sum()) if x.size and not np.isnan(x).any() else NAN


def _combine(gpus: tuple[GpuWindowFigures, ...], start_ns: int, end_ns: int,
             done: tuple[int, int]) -> GpuWindowFigures:
    """All GPUs as one (docs/metrics.md): utilisations and clocks averaged over the GPUs,
    bandwidth, power, energy and memory summed, the throttled and memory shares of the worst
    GPU."""
    def col(name: str) -> np.ndarray:
        return np.array([getattr(g, name) for g in gpus], dtype=np.float64)

    dram, peak = _sum_or_nan(col("dram_bw_bytes_per_s")), _sum_or_nan(col("peak_dram_bytes_per_s"))
    energy = _sum_or_nan(col("energy_j"))
    shares: dict[int, ThrottleShare] = {}
    for g in gpus:
        for sh in g.throttle:
            if sh.bit not in shares or sh.time_frac > shares[sh.bit].time_frac:
                shares[sh.bit] = sh
    n_req, tokens = done
    return GpuWindowFigures(
        gpu_index=None, gpu_uuid="", name="all GPUs", start_ns=start_ns, end_ns=end_ns,
        sm_busy_frac=_nan_mean(col("sm_busy_frac")),
        sm_occupancy_frac=_nan_mean(col("sm_occupancy_frac")),
        tensor_active_frac=_nan_mean(col("tensor_active_frac")),
        dram_bw_bytes_per_s=dram, dram_bw_peak_frac=dram / peak if peak > 0 else NAN,
        peak_dram_bytes_per_s=peak, gpm_windows=int(col("gpm_windows").sum()),
        gpm_period_median_s=_nan_median(col("gpm_period_median_s")),
        nvml_util_frac=_nan_mean(col("nvml_util_frac")),
        power_mean_w=_sum_or_nan(col("power_mean_w")), energy_j=energy,
        sm_clock_median_mhz=_nan_median(col("sm_clock_median_mhz")),
        max_sm_clock_mhz=_nan_max(col("max_sm_clock_mhz")),
        sm_clock_max_frac=_nan_mean(col("sm_clock_max_frac")),
        throttled_frac=_nan_max(col("throttled_frac")),
        throttle=tuple(shares[b] for b in sorted(shares)),
        mem_used_max_bytes=_sum_or_nan(col("mem_used_max_bytes")),
        mem_total_bytes=_sum_or_nan(col("mem_total_bytes")),
        mem_used_max_frac=_nan_max(col("mem_used_max_frac")),
        samples=int(col("samples").sum()),
        sample_period_median_s=_nan_median(col("sample_period_median_s")),
        requests_completed=n_req, output_tokens=tokens,
        energy_per_output_token_j=energy / tokens if tokens else NAN,
        energy_per_request_j=energy / n_req if n_req else NAN)


def gpu_figures(tables: GpuTables, start_ns: int, end_ns: int, ok: pd.DataFrame | None = None,
                window_note: str = "") -> GpuFigures:
    """The GPU figures of [start_ns, end_ns], per GPU and combined. ``ok``: the client's
    successful measured requests (``t_last_ns``, ``output_tokens``) for the per-request
    figures; None leaves them NaN."""
    done = _per_request(ok, start_ns, end_ns)
    gpus = tuple(_one_gpu(tables, i, start_ns, end_ns, done) for i in tables.gpu_indices)
    return GpuFigures(start_ns=start_ns, end_ns=end_ns, window_note=window_note, gpus=gpus,
                      combined=_combine(gpus, start_ns, end_ns, done),
                      gpm_supported=bool(len(tables.gpm)) or any(d.gpm_supported
                                                                   for d in tables.devices),
                      warnings=tables.warnings)
