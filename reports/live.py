"""Live progress while a run goes on: a rich panel on a terminal, plain log lines in CI.

Shows requests done (of planned) and in flight, errors, request and output-token throughput,
TTFT and ITL percentiles of the most recent requests (the last 512 TTFTs, the last 4,096
gaps between events: a moving view, not the run's statistics, which come from the recorded
events afterwards), and the engine's KV-cache usage, running and waiting requests from the
latest scrape. With the GPU collector: SM busy, DRAM bandwidth as % of the device's peak,
tensor activity, NVML utilization (all GPUs watched, as the collector publishes them), power
and memory used; a value the collector does not publish is not shown. With several client
workers only the counts are live.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from collectors.client.progress import Progress

__all__ = ["GPU_FIELDS", "LiveView", "live_fields"]


def _p_ms(values_ns: list[int], q: float) -> float:
    """The q-quantile in ms under servescope's one definition (docs/metrics.md: linear
    interpolation at rank (n - 1)·q, as ``np.percentile``)."""
    if not values_ns:
        return math.nan
    import numpy as np

    return float(np.percentile(np.asarray(values_ns, dtype=np.float64), q * 100,
                               method="linear")) / 1e6


def _f(v: float, fmt: str) -> str:
    return "–" if v is None or math.isnan(v) else format(v, fmt)


# live keys the GPU collector publishes -> (label, scale, format, suffix)
GPU_FIELDS: tuple[tuple[str, str, float, str, str], ...] = (
    ("gpu_sm_util_frac", "SM busy", 100.0, ".0f", "%"),
    ("gpu_dram_bw_frac", "DRAM of peak", 100.0, ".0f", "%"),
    ("gpu_tensor_frac", "tensor", 100.0, ".0f", "%"),
    ("gpu_util_frac", "NVML util", 100.0, ".0f", "%"),
    ("gpu_power_w", "power", 1.0, ",.0f", " W"),
    ("gpu_mem_used_bytes", "GPU mem", 1 / 2**30, ".1f", " GiB"),
)
_ENGINE_KEYS = ("kv_cache_usage_frac", "requests_running", "requests_waiting")


def _gpu_fields(eng: dict[str, float]) -> dict[str, str]:
    out = {}
    for key, label, scale, fmt, suffix in GPU_FIELDS:
        v = eng.get(key)
        if v is not None and not math.isnan(v):
            out[label] = format(v * scale, fmt) + suffix
    return out


def live_fields(p: Progress, elapsed_s: float) -> dict[str, str]:
    """The live numbers as label → text (what both the panel and the log line show)."""
    planned = f"/{p.planned}" if p.planned else ""
    rate = p.done / elapsed_s if elapsed_s > 0 else math.nan
    tok = p.output_tokens / elapsed_s if elapsed_s > 0 else math.nan
    eng = p.engine
    kv = eng.get("kv_cache_usage_frac", math.nan)
    out = {
        "done": f"{p.done}{planned}",
        "in flight": str(p.in_flight),
        "errors": str(p.errors),
        "req/s": _f(rate, ".1f"),
        "out tok/s": _f(tok, ",.0f") if p.output_tokens else "–",
        "TTFT p50/p99 ms": f"{_f(_p_ms(p.recent_ttft_ns, 0.5), '.1f')}/"
                           f"{_f(_p_ms(p.recent_ttft_ns, 0.99), '.1f')}",
        "ITL p50/p99 ms": f"{_f(_p_ms(p.recent_itl_ns, 0.5), '.1f')}/"
                          f"{_f(_p_ms(p.recent_itl_ns, 0.99), '.1f')}",
    }
    if any(k in eng for k in _ENGINE_KEYS):
        out["KV cache"] = _f(100 * kv, ".1f") + ("%" if not math.isnan(kv) else "")
        out["running/waiting"] = (f"{_f(eng.get('requests_running', math.nan), '.0f')}/"
                                  f"{_f(eng.get('requests_waiting', math.nan), '.0f')}")
    out.update(_gpu_fields(eng))
    if p.steps > 1:
        out = {"step": f"{p.step + 1}/{p.steps}", **out}
    return out


class LiveView:
    """Call :meth:`update` with each :class:`Progress`; use as a context manager."""

    def __init__(self, console: Console, label: str, log_every_s: float = 5.0) -> None:
        self.console = console
        self.label = label
        self.log_every_s = log_every_s
        self._live: Live | None = None
        self._last_log = 0.0
        self._t0: float | None = None  # the first request sent (not the engine's start-up)
        self._step = -1

    def __enter__(self) -> LiveView:
        if self.console.is_terminal:
            self._live = Live(console=self.console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def _elapsed(self, p: Progress) -> float:
        if p.step != self._step:  # a sweep step starts its counts (and clock) afresh
            self._step, self._t0 = p.step, None
        if self._t0 is None and (p.sent or p.done):
            self._t0 = time.monotonic()
        return 0.0 if self._t0 is None else time.monotonic() - self._t0

    def line(self, p: Progress) -> str:
        fields = live_fields(p, self._elapsed(p))
        return f"{self.label}: " + ", ".join(f"{k} {v}" for k, v in fields.items())

    def update(self, p: Progress) -> None:
        if self._live is not None:
            fields = live_fields(p, self._elapsed(p))
            t = Table(title=Text(self.label), title_justify="left", show_edge=False)
            for k in fields:
                t.add_column(k, justify="right")
            t.add_row(*fields.values())
            self._live.update(t)
            return
        elapsed = self._elapsed(p)  # every update, so the clock starts at the first send
        now = time.monotonic()
        if now - self._last_log >= self.log_every_s:
            self._last_log = now
            fields = live_fields(p, elapsed)
            self.console.print(f"{self.label}: " + ", ".join(f"{k} {v}" for k, v in
                                                             fields.items()),
                               highlight=False, markup=False)
