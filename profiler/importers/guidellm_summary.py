"""GuideLLM's own numbers for one benchmark of ``benchmarks.json``: what the manifest keeps.

Each distribution keeps its ``successful`` / ``errored`` / ``incomplete`` summaries
(``mean``, ``median``, ``std_dev``, ``min``, ``max``, ``count``, ``total_sum``,
``percentiles``) without the per-bin ``pdf`` and confidence intervals.
"""

from __future__ import annotations

from typing import Any

from profiler.importers.fields import Where, sub

__all__ = ["benchmark_aggregates", "step_window"]

_STATUSES = ("successful", "errored", "incomplete", "total")
_KEEP = ("mean", "median", "mode", "variance", "std_dev", "min", "max", "count", "total_sum",
         "percentiles")


def _distribution(value: object) -> dict[str, Any] | None:
    if not isinstance(value, dict) or not isinstance(value.get("successful"), dict):
        return None
    out: dict[str, Any] = {}
    for status in _STATUSES:
        summary = value.get(status)
        if isinstance(summary, dict):
            out[status] = {k: summary[k] for k in _KEEP if k in summary}
    return out


def benchmark_aggregates(bench: dict[str, Any]) -> dict[str, Any]:
    """GuideLLM's request totals, window, strategy and metric summaries of ``bench``."""
    metrics, strategy = sub(bench, "metrics"), sub(sub(bench, "config"), "strategy")
    out: dict[str, Any] = {
        "strategy": strategy,
        "worker_count": strategy.get("worker_count"),
        "request_totals": metrics.get("request_totals"),
        "start_time": bench.get("start_time"),
        "end_time": bench.get("end_time"),
        "duration": bench.get("duration"),
        "warnings": bench.get("warnings", []),
    }
    sched = sub(bench, "scheduler_metrics")
    out["measure_start_time"] = sched.get("measure_start_time")
    out["measure_end_time"] = sched.get("measure_end_time")
    for name, value in metrics.items():
        dist = _distribution(value)
        if dist is not None:
            out[name] = dist
    return out


def step_window(bench: dict[str, Any], w: Where) -> tuple[float, float] | None:
    """GuideLLM's measure window (epoch s) of ``bench``, when the file has one."""
    sched = bench.get("scheduler_metrics")
    if not isinstance(sched, dict):
        return None
    ws = w.at("scheduler_metrics")
    start, end = ws.opt_float(sched, "measure_start_time"), ws.opt_float(sched, "measure_end_time")
    return None if start is None or end is None else (start, end)
