"""A sweep's throughput-latency curve, its knee, and the highest load that meets the SLOs.

Each sweep step is one point: the **offered load** (the step's rate in requests/s, or its
concurrency for a closed loop, from the manifest's workload), the **achieved** request and
output-token throughput, and latency percentiles, all from that step's own summary
(:func:`analyzers.summary.summarize`).

- **Knee** (Kneedle, Satopaa et al. 2011): both axes are scaled to [0, 1] over the sweep
  (x = achieved output tokens/s, y = the chosen latency, p99 E2E by default); the knee is the
  step whose point lies farthest *below* the straight line from the first point to the last,
  i.e. where latency starts rising faster than throughput. With fewer than three steps, or a
  curve that never bends upward (the farthest distance is not positive), there is no knee.
- **Max goodput** (with SLOs): the step with the highest good requests/s. **Highest load
  meeting the SLOs**: the highest offered load whose SLO attainment (good / measured) is at
  least ``attainment`` (default 0.9, the DistServe convention). Every step's attainment is
  listed, so a curve that fails at one load and passes at a higher one is visible.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analyzers.goodput import SLO
from analyzers.summary import RunSummary

__all__ = ["DEFAULT_ATTAINMENT", "SweepCurve", "SweepPoint", "sweep_curve"]

DEFAULT_ATTAINMENT = 0.9
_LATENCIES = {"e2e_p99": ("e2e_ns", "p99"), "e2e_p50": ("e2e_ns", "p50"),
              "ttft_p99": ("ttft_ns", "p99"), "ttft_p50": ("ttft_ns", "p50"),
              "tpot_p99": ("tpot_ns", "p99"), "tpot_p50": ("tpot_ns", "p50")}


@dataclass(frozen=True, slots=True)
class SweepPoint:
    step: int
    offered: float  # requests/s for open-loop steps, streams for closed-loop ones
    offered_unit: str  # "req/s" | "concurrency"
    request_throughput_per_s: float
    output_token_throughput_per_s: float
    ttft_p50_ns: float
    ttft_p99_ns: float
    tpot_p50_ns: float
    tpot_p99_ns: float
    e2e_p50_ns: float
    e2e_p99_ns: float
    error_rate: float
    good_requests_per_s: float | None
    slo_attainment: float | None


@dataclass(frozen=True, slots=True)
class SweepCurve:
    points: tuple[SweepPoint, ...]
    knee_step: int | None
    knee_latency: str
    slo: SLO | None
    attainment: float
    max_goodput_step: int | None
    highest_load_meeting_slo_step: int | None
    notes: tuple[str, ...]


def _offered(step_spec: Mapping[str, Any]) -> tuple[float, str]:
    rate = step_spec.get("rate_per_s")
    if rate is not None:
        return float(rate), "req/s"
    conc = step_spec.get("concurrency")
    return (float(conc), "concurrency") if conc is not None else (math.nan, "")


def knee_index(x: Sequence[float], y: Sequence[float]) -> int | None:
    """Kneedle on an increasing-latency curve: the index farthest below the chord from the
    first to the last point after scaling both axes to [0, 1]; None without a bend."""
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xs.size < 3 or not np.isfinite(xs).all() or not np.isfinite(ys).all():
        return None
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    span_x, span_y = xs[-1] - xs[0], ys.max() - ys.min()
    if span_x <= 0 or span_y <= 0:
        return None
    xn, yn = (xs - xs[0]) / span_x, (ys - ys.min()) / span_y
    chord = yn[0] + (yn[-1] - yn[0]) * xn
    below = chord - yn  # positive where the curve is under the chord (flat, then rising)
    i = int(np.argmax(below[1:-1])) + 1
    return int(order[i]) if below[i] > 0 else None


def sweep_curve(summary: RunSummary, workload: Mapping[str, Any], slo: SLO | None = None, *,
                knee_latency: str = "e2e_p99",
                attainment: float = DEFAULT_ATTAINMENT) -> SweepCurve | None:
    """The curve of a run whose summary has several steps (None for a single-step run)."""
    if knee_latency not in _LATENCIES:
        raise ValueError(f"knee latency {knee_latency!r}: one of {', '.join(_LATENCIES)}")
    if not 0 < attainment <= 1:
        raise ValueError(f"SLO attainment must be in (0, 1], got {attainment}")
    if not summary.steps:
        return None
    specs = list(workload.get("steps", []))
    points: list[SweepPoint] = []
    for s in summary.steps:
        step = s.step if s.step is not None else 0
        offered, unit = _offered(specs[step]) if step < len(specs) else (math.nan, "")
        lat = s.latency
        g = s.goodput
        points.append(SweepPoint(
            step=step, offered=offered, offered_unit=unit,
            request_throughput_per_s=s.request_throughput_per_s,
            output_token_throughput_per_s=s.output_token_throughput_per_s,
            ttft_p50_ns=lat.ttft_ns.p50, ttft_p99_ns=lat.ttft_ns.p99,
            tpot_p50_ns=lat.tpot_ns.p50, tpot_p99_ns=lat.tpot_ns.p99,
            e2e_p50_ns=lat.e2e_ns.p50, e2e_p99_ns=lat.e2e_ns.p99, error_rate=s.error_rate,
            good_requests_per_s=g.good_requests_per_s if g else None,
            slo_attainment=g.good_fraction if g else None))
    notes: list[str] = []
    metric, stat = _LATENCIES[knee_latency]
    ys = [getattr(getattr(s.latency, metric), stat) for s in summary.steps]
    k = knee_index([p.output_token_throughput_per_s for p in points], ys)
    if k is None:
        finite = all(math.isfinite(v) for v in ys) and all(
            math.isfinite(p.output_token_throughput_per_s) for p in points)
        notes.append(f"no knee: {knee_latency} does not bend upward against throughput over "
                     f"these {len(points)} steps (fewer than 3, or latency grows linearly)"
                     if finite else f"no knee: a step has no {knee_latency} or throughput "
                     "(nothing succeeded there)")
    best = meets = None
    if slo is not None:
        good = [(p.good_requests_per_s, p.step) for p in points
                if p.good_requests_per_s is not None and math.isfinite(p.good_requests_per_s)
                and p.good_requests_per_s > 0]
        best = max(good)[1] if good else None
        ok = [p for p in points if p.slo_attainment is not None
              and p.slo_attainment >= attainment and not math.isnan(p.offered)]
        meets = max(ok, key=lambda p: p.offered).step if ok else None
        if meets is None:
            notes.append(f"no step met the SLOs for {attainment:.0%} of its requests")
    return SweepCurve(points=tuple(points), knee_step=points[k].step if k is not None else None,
                      knee_latency=knee_latency, slo=slo, attainment=attainment,
                      max_goodput_step=best, highest_load_meeting_slo_step=meets,
                      notes=tuple(notes))
