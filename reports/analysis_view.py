"""Terminal rendering of :class:`analyzers.run_analysis.RunAnalysis` (and its JSON form).

Every string that came from the engine or the run (error messages, flags) is printed with
markup disabled, so a hostile message cannot restyle the terminal output.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from analyzers.findings import Finding, Severity
from analyzers.run_analysis import RunAnalysis
from servescope.units import fmt_ms

__all__ = ["analysis_json", "print_analysis"]

_STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_NAMES = {"ttft_ns": "TTFT", "itl_per_token_ns": "ITL/token", "tpot_ns": "TPOT", "e2e_ns": "E2E"}


def _ms(v: float) -> str:
    return fmt_ms(v, 1)


def print_finding(console: Console, f: Finding) -> None:
    head = Text()
    head.append(f"[{f.severity.value}] ", style=_STYLE[f.severity])
    head.append(f.title, style="bold")
    console.print(head)
    console.print(Text(f"  {f.summary}"))
    ev = ", ".join(f"{e.name}={e.value:.4g}" for e in f.evidence if not math.isnan(e.value))
    console.print(Text(f"  evidence: {ev}", style="dim"))
    console.print(Text(f"  window: {(f.window_end_ns - f.window_start_ns) / 1e9:.2f} s; "
                       f"requests affected: {f.requests_affected}"
                       + (f" (e.g. ids {', '.join(map(str, f.request_ids[:5]))})"
                          if f.request_ids else ""), style="dim"))
    for a in f.actions:
        console.print(Text(f"  → {a}", style="green"))


def print_analysis(console: Console, a: RunAnalysis) -> None:
    for warning in a.summary.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))
    w = a.steady
    if w.found:
        console.print(Text(f"steady state: {w.window_ns / 1e9:.2f} s, {w.steady_requests} of "
                           f"{w.measured_requests} requests ({w.reason})"))
    else:
        console.print(Text(f"no steady state: the whole load is used, {w.window_ns / 1e9:.2f} "
                           f"s, {w.measured_requests} requests ({w.reason})"))
    if w.found:
        console.print(f"steady throughput: {a.steady_request_throughput_per_s:.2f} req/s, "
                      f"{a.steady_output_token_throughput_per_s:,.1f} output tok/s")
    t = Table(title="percentiles with 95 % bootstrap confidence intervals (ms)",
              show_header=bool(a.percentile_cis))
    t.add_column("metric")
    for pct in (50, 90, 99):
        t.add_column(f"p{pct}", justify="right")
    t.add_column("n", justify="right")
    if not a.percentile_cis:
        console.print("percentiles per sweep step: see the sweep table")
    for key, cis in a.percentile_cis.items():
        cells = []
        for q in (50.0, 90.0, 99.0):
            i = cis[q]
            cells.append(f"{_ms(i.estimate)} [{_ms(i.low)}–{_ms(i.high)}]"
                         if math.isfinite(i.low) and math.isfinite(i.high) else _ms(i.estimate))
        t.add_row(_NAMES.get(key, key), *cells, str(next(iter(cis.values())).n))
    console.print(t)
    if a.gpu is not None:
        _print_gpu(console, a)
    for d in a.decomposition:
        parts = ", ".join(f"{p.name} {p.mean_ns / 1e6:,.1f} ms ({p.share:.0%})" for p in d.parts)
        console.print(Text(f"{d.latency.upper()} mean {d.client_mean_ns / 1e6:,.1f} ms = {parts}"))
        for n in d.notes:
            console.print(Text(f"  note: {n}", style="dim"))
    if a.sweep is not None:
        _print_sweep(console, a)
    if not a.findings:
        console.print("[green]no bottleneck found by the rules[/]")
    for f in a.findings:
        print_finding(console, f)


def _num(v: float, fmt: str) -> str:
    return "–" if not math.isfinite(v) else format(v, fmt)


def _print_gpu(console: Console, a: RunAnalysis) -> None:
    """The GPU figures over the same window as the percentiles above."""
    g = a.gpu
    if g is None:
        return
    rows = [*g.gpus, g.combined] if len(g.gpus) > 1 else list(g.gpus)
    t = Table(title=f"GPU over the same window ({g.window_note})")
    t.add_column("GPU")
    for col in ("SM busy", "occupancy", "DRAM GB/s (% peak)", "tensor", "NVML util",
                "power W", "energy J", "J/token", "J/request", "SM clock MHz (% max)",
                "throttled", "memory GiB (%)", "samples (period)"):
        t.add_column(col, justify="right")
    for f in rows:
        t.add_row(
            Text("all" if f.gpu_index is None else f"{f.gpu_index} {f.name}"),
            _num(f.sm_busy_frac, ".0%"), _num(f.sm_occupancy_frac, ".0%"),
            f"{_num(f.dram_bw_bytes_per_s / 1e9, ',.0f')} ({_num(f.dram_bw_peak_frac, '.0%')})",
            _num(f.tensor_active_frac, ".0%"), _num(f.nvml_util_frac, ".0%"),
            _num(f.power_mean_w, ",.0f"), _num(f.energy_j, ",.0f"),
            _num(f.energy_per_output_token_j, ".3g"), _num(f.energy_per_request_j, ".3g"),
            f"{_num(f.sm_clock_median_mhz, '.0f')} ({_num(f.sm_clock_max_frac, '.0%')})",
            _num(f.throttled_frac, ".0%"),
            f"{_num(f.mem_used_max_bytes / 2**30, ',.1f')} "
            f"({_num(f.mem_used_max_frac, '.0%')})",
            f"{f.samples} ({_num(f.sample_period_median_s * 1e3, '.0f')} ms)")
    console.print(t)


def _print_sweep(console: Console, a: RunAnalysis) -> None:
    sw = a.sweep
    if sw is None:
        return
    t = Table(title="sweep: throughput vs latency")
    for col in ("step", "offered", "req/s", "out tok/s", "TTFT p99", "E2E p99", "errors",
                "SLO met"):
        t.add_column(col, justify="right")
    for p in sw.points:
        mark = (" knee" if p.step == sw.knee_step else "") + (
            " max-goodput" if p.step == sw.max_goodput_step else "") + (
            " highest-meeting-SLO" if p.step == sw.highest_load_meeting_slo_step else "")
        t.add_row(f"{p.step}{mark}", f"{p.offered:g} {p.offered_unit}",
                  f"{p.request_throughput_per_s:.2f}", f"{p.output_token_throughput_per_s:,.1f}",
                  _ms(p.ttft_p99_ns), _ms(p.e2e_p99_ns), f"{p.error_rate:.1%}",
                  "–" if p.slo_attainment is None else f"{p.slo_attainment:.0%}")
    console.print(t)
    for n in sw.notes:
        console.print(Text(f"  note: {n}", style="dim"))


def analysis_json(a: RunAnalysis) -> dict[str, Any]:
    """The analysis as JSON-ready data (NaN becomes null)."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None  # JSON has no NaN or infinity
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return {
        "steady": clean(dataclasses.asdict(a.steady) | {"steady_ids": len(a.steady.steady_ids)}),
        "steady_request_throughput_per_s": clean(a.steady_request_throughput_per_s),
        "steady_output_token_throughput_per_s": clean(a.steady_output_token_throughput_per_s),
        "percentile_cis": clean({k: {str(q): dataclasses.asdict(i) for q, i in v.items()}
                                 for k, v in a.percentile_cis.items()}),
        "decomposition": clean([dataclasses.asdict(d) for d in a.decomposition]),
        "sweep": clean(dataclasses.asdict(a.sweep)) if a.sweep is not None else None,
        "findings": clean([f.to_json() for f in a.findings]),
        "gpu": clean(a.gpu.to_json()) if a.gpu is not None else None,
        "warnings": list(a.summary.warnings),
    }
