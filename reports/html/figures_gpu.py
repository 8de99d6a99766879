"""The GPU panels of the shared time axis, drawn from :class:`~analyzers.gpu_series.GpuSeries`
(each run's ``RunInputs.gpu``; a run without one adds no panel). One trace per GPU and
metric, top to bottom:

- SM busy and SM occupancy (GPM), with NVML's "a kernel was running" utilization dotted
  for contrast (it reads high while SMs idle);
- DRAM bandwidth in GB/s with each device's peak as a dashed line (% of peak when the
  device's peak is unknown);
- tensor activity (GPM any_tensor_util);
- power (W) and SM clock (MHz), the periods a power or thermal cap held the clock down
  shaded red (NVML clock-event reasons 0x4, 0x8, 0x40, 0x80, 0x100; 0x1 idle is not one);
- GPU memory used (GiB).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from analyzers.gpu_series import GpuSeries, Series
from analyzers.report_inputs import RunInputs
from reports.html.figspec import RUN_COLORS, nums, secs
from reports.html.panels import Panel, PanelCtx, Span, line, trace_name
from reports.html.text import plot_text

__all__ = ["GPU_PANELS", "THROTTLE_COLOR"]

THROTTLE_COLOR = "#d62728"
_GPU_COLORS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
               "#1f77b4")
_DASH = {"main": "solid", "second": "dash", "contrast": "dot"}


def _gpu_runs(c: PanelCtx) -> list[tuple[int, RunInputs, GpuSeries]]:
    return [(ri, r, r.gpu) for ri, r in enumerate(c.runs) if r.gpu is not None]


def _color(c: PanelCtx, ri: int, gpu_index: int) -> str:
    if len(c.runs) > 1:
        return RUN_COLORS[ri]
    return _GPU_COLORS[gpu_index % len(_GPU_COLORS)]


def _gpu_label(g: GpuSeries, s: Series, what: str) -> str:
    multi = len({x.gpu_index for x in g.series}) > 1
    return f"GPU {s.gpu_index} {what}" if multi else what


def _trace(c: PanelCtx, run: tuple[int, RunInputs, GpuSeries], s: Series, what: str, *,
           style: str, scale: float) -> dict[str, Any]:
    ri, r, g = run
    name = trace_name(r, ri, len(c.runs), _gpu_label(g, s, what))
    return line(secs(s.t_s), nums(s.value * scale), plot_text(name),
                _color(c, ri, s.gpu_index), line={"dash": _DASH[style]}, connectgaps=False,
                mode="lines+markers" if s.t_s.size < 60 else "lines", marker={"size": 3})


def _reduction_note(p: Panel, series: list[Series]) -> None:
    bins = {s.bin_s for s in series if s.bin_s > 0}
    if bins:
        how = "largest" if p.key == "gpu_mem" else "mean"
        p.notes.append(f"{p.title}: {how} per {min(bins):.3g} s bin")


def _metrics_panel(c: PanelCtx, key: str, title: str,
                   metrics: tuple[tuple[str, str, str], ...], *, percent: bool = True,
                   scale: float = 1.0) -> Panel | None:
    """A panel of (metric, label, style) traces, each GPU of each run."""
    p = Panel(key, title, [], percent=percent)
    used: list[Series] = []
    for run in _gpu_runs(c):
        for metric, what, style in metrics:
            for s in run[2].of(metric):
                p.traces.append(_trace(c, run, s, what, style=style, scale=scale))
                used.append(s)
    if not p.traces:
        return None
    _reduction_note(p, used)
    return p


def _sm(c: PanelCtx) -> Panel | None:
    p = _metrics_panel(c, "gpu_sm", "SM busy / occupancy", (
        ("sm_busy_frac", "SM busy", "main"), ("sm_occupancy_frac", "SM occupancy", "second"),
        ("nvml_util_frac", "NVML util", "contrast")))
    if p is not None and any(s.metric == "nvml_util_frac" for _, _, g in _gpu_runs(c)
                             for s in g.series):
        p.notes.append("NVML util (dotted): share of time any kernel ran, not how busy the "
                       "SMs were")
    return p


def _dram(c: PanelCtx) -> Panel | None:
    runs = _gpu_runs(c)
    peak_known = bool(runs) and all(
        s.gpu_index in {x.gpu_index for x in g.of("dram_bw_bytes_per_s")}
        for _, _, g in runs for s in g.of("dram_bw_peak_frac"))
    if not peak_known:
        return _metrics_panel(c, "gpu_dram", "DRAM BW (% of peak)",
                              (("dram_bw_peak_frac", "DRAM BW", "main"),))
    p = _metrics_panel(c, "gpu_dram", "DRAM BW (GB/s)",
                       (("dram_bw_bytes_per_s", "DRAM BW", "main"),), percent=False,
                       scale=1e-9)
    if p is None:
        return None
    x = [0.0, float(c.edges[-1])]
    for ri, r, g in runs:
        for s in g.of("dram_bw_bytes_per_s"):
            d = g.device(s.gpu_index)
            if d is None or not d.peak_dram_bytes_per_s:
                continue
            peak = d.peak_dram_bytes_per_s / 1e9
            name = trace_name(r, ri, len(c.runs), _gpu_label(g, s, f"peak {peak:,.0f} GB/s"))
            p.traces.append(line(x, nums([peak, peak]), plot_text(name), "#999999",
                                 line={"dash": "dash", "width": 1}, hoverinfo="name"))
    return p


def _tensor(c: PanelCtx) -> Panel | None:
    return _metrics_panel(c, "gpu_tensor", "tensor active",
                          (("tensor_active_frac", "tensor active", "main"),))


def _throttle(c: PanelCtx, p: Panel, y_metric: str, *, markers: bool) -> None:
    """Shade the throttled periods of every GPU in ``p``; with ``markers``, a hover marker
    on each naming its reasons."""
    for ri, r, g in _gpu_runs(c):
        tops = {s.gpu_index: float(np.nanmax(s.value)) if np.isfinite(s.value).any()
                else math.nan for s in g.of(y_metric)}
        xs, ys, texts = [], [], []
        for sp in g.throttle:
            shade = Span(sp.start_s, sp.end_s, THROTTLE_COLOR)
            if shade not in p.spans:  # several GPUs capped together: shaded once
                p.spans.append(shade)
            xs.append((sp.start_s + sp.end_s) / 2)
            ys.append(tops.get(sp.gpu_index, math.nan))
            texts.append(plot_text(f"GPU {sp.gpu_index} throttled {sp.end_s - sp.start_s:.3g}"
                                   f" s: {', '.join(sp.reasons)}"))
        if markers and xs:
            name = trace_name(r, ri, len(c.runs), "throttled (power/thermal cap)")
            p.traces.append({"type": "scatter", "mode": "markers", "x": secs(xs),
                             "y": nums(ys), "text": texts, "name": plot_text(name),
                             "marker": {"color": THROTTLE_COLOR, "symbol": "triangle-down",
                                        "size": 8},
                             "hovertemplate": "%{text}<extra></extra>"})
    if p.spans and markers:
        p.notes.append("red (power, SM clock): a power or thermal cap held the clock down")


def _power(c: PanelCtx) -> Panel | None:
    p = _metrics_panel(c, "gpu_power", "power (W)", (("power_w", "power", "main"),),
                       percent=False)
    if p is not None:
        _throttle(c, p, "power_w", markers=False)
    return p


def _clock(c: PanelCtx) -> Panel | None:
    p = _metrics_panel(c, "gpu_clock", "SM clock (MHz)", (("sm_clock_mhz", "SM clock",
                                                           "main"),), percent=False)
    if p is not None:
        _throttle(c, p, "sm_clock_mhz", markers=True)
    return p


def _memory(c: PanelCtx) -> Panel | None:
    return _metrics_panel(c, "gpu_mem", "GPU memory (GiB)",
                          (("mem_used_bytes", "memory used", "main"),), percent=False,
                          scale=1 / 2**30)


def _sampling_note(c: PanelCtx, p: Panel | None) -> Panel | None:
    """The first GPU panel says how often the GPU was sampled (the real spacing)."""
    if p is None:
        return None
    for ri, _, g in _gpu_runs(c):
        tag = f" ({'AB'[ri]})" if len(c.runs) > 1 else ""
        nvml = [f"GPU {i} every {v * 1e3:.3g} ms" for i, v in sorted(g.sample_period_s.items())
                if math.isfinite(v)]
        gpm = [f"GPU {i} {v * 1e3:.3g} ms" for i, v in sorted(g.gpm_period_s.items())]
        if nvml:
            p.notes.insert(0, f"NVML samples{tag}: {', '.join(nvml)} (median spacing)")
        if gpm:
            p.notes.insert(1 if nvml else 0, f"GPM windows{tag}: {', '.join(gpm)}")
    return p


def _first(c: PanelCtx) -> Panel | None:
    return _sampling_note(c, _sm(c))


GPU_PANELS: tuple[Callable[[PanelCtx], Panel | None], ...] = (
    _first, _dram, _tensor, _power, _clock, _memory)
