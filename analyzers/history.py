"""History mode: a series of runs of one configuration, searched for change points and drift.

:func:`run_history` takes run directories and/or stores (directories of run directories),
keeps the complete runs with measured requests, orders them by ``started_wall_ns``, takes one
value per run and metric (the value ``summarize`` reports), and runs
:func:`analyzers.changepoint.detect_changes` on each series. Each metric's p-value (the smaller
of its split and trend tests, Bonferroni-doubled) is corrected across the metrics (Holm by
default). A metric is **flagged** when the corrected p-value is below ``alpha`` and the change
is at least the minimum effect:

- with change points, the effect is the last segment's mean against the first's;
- without, a significant trend's total (slope × (runs − 1)).

A flagged metric whose effect points the bad way is ``regressed`` (exit code 1), the good way
``improved``; one whose change points cancel out (a step up, then back) is ``changed``.
Others are ``stable``. Fewer than four usable runs: exit code 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from analyzers.changepoint import SeriesChanges, detect_changes, effect
from analyzers.metric_catalog import Direction, Kind, MetricSpec, get_metric
from analyzers.significance import Correction, adjust_pvalues
from servescope.rundir.layout import RunDirError

if TYPE_CHECKING:
    from analyzers.goodput import SLO
    from analyzers.summary import RunSummary

__all__ = [
    "DEFAULT_HISTORY_METRICS",
    "History",
    "HistoryRun",
    "HistoryVerdict",
    "MetricHistory",
    "collect_points",
    "collect_runs",
    "run_history",
    "summary_value",
]

DEFAULT_HISTORY_METRICS = ("ttft_p50", "ttft_p99", "itl_p50", "itl_p99", "tpot_p50",
                           "e2e_p50", "e2e_p99", "output_throughput", "request_throughput",
                           "error_rate")
MIN_RUNS = 4
_CLIENT_KINDS = (Kind.PERCENTILE, Kind.RATE, Kind.PROPORTION)


class HistoryVerdict(StrEnum):
    REGRESSED = "regressed"
    IMPROVED = "improved"
    CHANGED = "changed"
    STABLE = "stable"


@dataclass(frozen=True, slots=True)
class HistoryRun:
    """One point of the series: a run, or a run group (``runs`` repeats, its value the mean
    of theirs)."""

    path: str
    run_id: str
    started_wall_ns: int
    runs: int = 1


@dataclass(frozen=True, slots=True)
class MetricHistory:
    spec: MetricSpec
    values: tuple[float, ...]  # one per run, in run order (NaN: undefined in that run)
    changes: SeriesChanges
    p_adjusted: float
    effect: float  # the flagged shift (relative, or a difference for proportions); NaN if none
    verdict: HistoryVerdict
    spread: float = math.nan  # run-to-run sd within the groups (relative, log); NaN: no repeats


@dataclass(frozen=True, slots=True)
class History:
    runs: tuple[HistoryRun, ...]
    metrics: tuple[MetricHistory, ...]
    skipped: tuple[str, ...]  # runs left out, and why
    alpha: float
    min_effect_frac: float
    min_effect_points: float

    @property
    def exit_code(self) -> int:
        if len(self.runs) < MIN_RUNS:
            return 2
        return 1 if any(m.verdict is HistoryVerdict.REGRESSED for m in self.metrics) else 0


def summary_value(summary: RunSummary, spec: MetricSpec) -> float:
    """The value ``summarize`` reports for a client metric (NaN if undefined)."""
    if spec.kind is Kind.PERCENTILE:
        return float(getattr(getattr(summary.latency, spec.source), f"p{spec.percentile:g}"))
    gp = summary.goodput
    if spec.source in ("good_requests_per_s", "good_fraction"):
        return float(getattr(gp, spec.source)) if gp is not None else math.nan
    if spec.kind in (Kind.RATE, Kind.PROPORTION):
        return float(getattr(summary, spec.source))
    raise ValueError(f"{spec.name} is not a client metric; history mode takes: "
                     f"{', '.join(DEFAULT_HISTORY_METRICS)} and the other latency, "
                     "throughput and goodput metrics")


def collect_runs(paths: Sequence[str | Path]) -> tuple[list[tuple[Path, int, str]], list[str]]:
    """((run dir, started_wall_ns, run_id) of complete runs, sorted by start; skipped notes).
    A path with a manifest is a run; any other directory is a store of runs."""
    from servescope.rundir.layout import MANIFEST_FILE
    from servescope.rundir.manifest import read_manifest

    found: list[tuple[Path, int, str]] = []
    skipped: list[str] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise RunDirError(f"{p} does not exist or is not a directory")
        candidates = [p] if (p / MANIFEST_FILE).is_file() else sorted(
            d for d in p.iterdir() if d.is_dir())
        for d in candidates:
            try:
                m = read_manifest(d)
            except RunDirError as exc:
                skipped.append(f"{d}: {exc}")
                continue
            if m.status != "complete":
                skipped.append(f"{d}: status {m.status!r}, not complete")
                continue
            found.append((d, m.started_wall_ns, m.run_id))
    found.sort(key=lambda r: r[1])
    return found, skipped


def collect_points(paths: Sequence[str | Path]
                   ) -> tuple[list[tuple[Path, int, str, list[Path]]], list[str]]:
    """Like :func:`collect_runs`, with run groups (``group.json``) as single points: (path,
    start, id, its complete run directories). A group with an incomplete repeat is skipped."""
    from servescope.rundir.group import is_group, read_group
    from servescope.rundir.manifest import read_manifest

    plain: list[Path] = []
    points: list[tuple[Path, int, str, list[Path]]] = []
    skipped: list[str] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise RunDirError(f"{p} does not exist or is not a directory")
        store = not is_group(p) and not (p / "manifest.json").is_file()
        groups = [d for d in sorted(p.iterdir()) if d.is_dir() and is_group(d)] if store \
            else ([p] if is_group(p) else [])
        for g in groups:
            try:
                dirs = read_group(g).run_dirs()
                ms = [read_manifest(d) for d in dirs]
            except RunDirError as exc:
                skipped.append(f"{g}: {exc}")
                continue
            if not ms or any(m.status != "complete" for m in ms):
                skipped.append(f"{g}: a repeat is not complete")
                continue
            points.append((g, min(m.started_wall_ns for m in ms), g.name, dirs))
        if store and groups:  # the store's other entries, one by one
            plain += [d for d in sorted(p.iterdir()) if d.is_dir() and not is_group(d)
                      and (d / "manifest.json").is_file()]
        elif not groups:
            plain.append(p)
    if plain:
        found, more = collect_runs(plain)
        points += [(d, t, rid, [d]) for d, t, rid in found]
        skipped += more
    points.sort(key=lambda r: r[1])
    return points, skipped


def _spread(per_point: list[list[float]], relative: bool) -> float:
    ss, df = 0.0, 0
    for vals in per_point:
        x = np.asarray(vals, dtype=np.float64)
        if relative:
            x = np.log(x[x > 0])
        x = x[np.isfinite(x)]
        if x.size >= 2:
            ss += float(((x - x.mean()) ** 2).sum())
            df += x.size - 1
    return math.sqrt(ss / df) if df else math.nan


def run_history(paths: Sequence[str | Path], *, metrics: Sequence[str] = DEFAULT_HISTORY_METRICS,
                slo: SLO | None = None, alpha: float = 0.05, min_effect_frac: float = 0.05,
                min_effect_points: float = 0.01, correction: Correction = Correction.HOLM,
                n_permutations: int = 2000, seed: int = 0) -> History:
    """Change points and drift per metric over the runs in ``paths`` (module doc)."""
    from analyzers.context import RunContext

    specs = [get_metric(m) for m in metrics]
    for s in specs:
        if s.kind not in _CLIENT_KINDS:
            raise ValueError(f"history mode takes client metrics only, not {s.name}")
        if s.needs_slo and slo is None:
            raise ValueError(f"{s.name} needs goodput objectives (an SLO)")
    found, skipped = collect_points(paths)
    runs: list[HistoryRun] = []
    values: list[list[float]] = []
    repeats: list[list[list[float]]] = []  # point -> metric -> per-run values
    for d, started, run_id, dirs in found:
        try:
            summaries = [RunContext(r).summary(slo) for r in dirs]
        except RunDirError as exc:
            skipped.append(f"{d}: {exc}")
            continue
        if any(sm.measured_requests == 0 for sm in summaries):
            skipped.append(f"{d}: no measured requests")
            continue
        per_run = [[summary_value(sm, s) for sm in summaries] for s in specs]
        runs.append(HistoryRun(str(d), run_id, started, len(dirs)))
        values.append([float(np.mean(v)) for v in per_run])
        repeats.append(per_run)
    series = [[row[i] for row in values] for i in range(len(specs))]
    spreads = [_spread([pt[i] for pt in repeats], s.relative) for i, s in enumerate(specs)]
    changes = [detect_changes(v, relative=s.relative, alpha=alpha,
                              min_effect=min_effect_frac if s.relative else min_effect_points,
                              n_permutations=n_permutations, seed=seed)
               for s, v in zip(specs, series, strict=True)]
    adjusted = adjust_pvalues([c.p_value for c in changes], correction)
    out = []
    for s, v, c, p, sp in zip(specs, series, changes, adjusted, spreads, strict=True):
        thr = min_effect_frac if s.relative else min_effect_points
        eff, verdict = _verdict(s, c, p, alpha, thr)
        out.append(MetricHistory(s, tuple(v), c, p, eff, verdict, sp))
    return History(tuple(runs), tuple(out), tuple(skipped), alpha, min_effect_frac,
                   min_effect_points)


def _verdict(spec: MetricSpec, c: SeriesChanges, p_adj: float, alpha: float,
             threshold: float) -> tuple[float, HistoryVerdict]:
    if not p_adj < alpha:
        return math.nan, HistoryVerdict.STABLE
    if c.change_points:
        first, last = c.change_points[0], c.change_points[-1]
        eff = effect(first.before_mean, last.after_mean, spec.relative)
        if not abs(eff) >= threshold:
            return eff, HistoryVerdict.CHANGED
    elif c.trend is not None and c.trend.p_value < alpha and \
            abs(c.trend.total_effect) >= threshold:
        eff = c.trend.total_effect
    else:
        return math.nan, HistoryVerdict.STABLE
    worse = eff > 0 if spec.direction is Direction.LOWER else eff < 0
    return eff, HistoryVerdict.REGRESSED if worse else HistoryVerdict.IMPROVED
