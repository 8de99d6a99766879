"""Compare two runs metric by metric: the change, its confidence interval, a test, a verdict.

:func:`compare_runs` (two runs, or their contexts) and :func:`compare_samples` (their samples)
return a :class:`Comparison`: one :class:`MetricComparison` per metric both runs have, and the
manifest keys that differ. Data only; ``reports.markdown`` and ``reports.compare_terminal``
render it.

**Verdict** of a metric (``docs/analysis.md`` explains it with examples). Let ``T`` be the
minimum effect (``min_effect_frac`` for relative changes, ``min_effect_points`` for
proportions), ``[lo, hi]`` the change's CI, and *significant* mean the test's p-value after
the multiplicity correction (Holm by default, over the distinct tests run) is below ``alpha``:

- ``regressed``: significant **and** the whole CI is beyond ``T`` in the bad direction
  (``lo > T`` for lower-is-better, ``hi < −T`` for higher-is-better);
- ``improved``: the same in the good direction;
- ``unchanged``: the whole CI lies within ``(−T, T)``: whatever changed is smaller than the
  smallest effect that matters;
- ``inconclusive``: anything else: the CI straddles ``±T`` (too few samples to tell), or it
  is beyond ``T`` while the test is not significant (a change in the tail only: the rank test
  looks at the whole distribution);
- ``not tested``: no interval (engine gauges and counters: one value per run; fewer than two
  samples).

The CI and tests see the noise *within* each run (requests, slices). Two runs of one
configuration on a shared machine also differ *between* runs (vLLM-CPU: about ±7 % in
throughput); a minimum effect below that noise flags machine noise as a change.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from analyzers.bootstrap import Interval
from analyzers.compare_metrics import Evidence, available, evidence
from analyzers.manifest_diff import ManifestChange, manifest_diff
from analyzers.metric_catalog import CATALOG, Direction, Kind, MetricSpec, get_metric
from analyzers.run_samples import DEFAULT_SLICES, RunSamples, run_samples
from analyzers.significance import Correction, adjust_pvalues

if TYPE_CHECKING:
    from analyzers.context import RunSource
    from analyzers.goodput import SLO

__all__ = [
    "CompareSettings",
    "Comparison",
    "MetricComparison",
    "RunRef",
    "Verdict",
    "compare_runs",
    "compare_samples",
    "judge",
]


class Verdict(StrEnum):
    IMPROVED = "improved"
    REGRESSED = "regressed"
    UNCHANGED = "unchanged"
    INCONCLUSIVE = "inconclusive"
    NOT_TESTED = "not tested"


@dataclass(frozen=True, slots=True)
class CompareSettings:
    """How changes are judged. ``min_effect_frac``: smallest relative change that matters
    (0.05 = 5 %); ``min_effect_points``: the same for proportions, as a difference (0.01 =
    1 percentage point)."""

    confidence: float = 0.95
    alpha: float = 0.05
    min_effect_frac: float = 0.05
    min_effect_points: float = 0.01
    correction: Correction = Correction.HOLM
    n_resamples: int = 1000
    seed: int = 0
    n_slices: int = DEFAULT_SLICES
    pair_rounds: bool = True  # arms run in interleaved rounds are judged paired by round

    def __post_init__(self) -> None:
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), not {self.confidence}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), not {self.alpha}")
        if not (self.min_effect_frac >= 0 and self.min_effect_points >= 0):
            raise ValueError("a minimum effect cannot be negative")
        if self.n_slices < 2:
            raise ValueError(f"n_slices must be at least 2, not {self.n_slices}")


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """One metric of two runs. Values are in ``spec.unit``; ``change`` is relative
    (``candidate / baseline − 1``) when ``spec.relative``, else ``candidate − baseline``.
    ``p_adjusted`` is the p-value after the multiplicity correction (NaN: no test)."""

    spec: MetricSpec
    baseline: float
    candidate: float
    change: Interval
    test: str
    p_value: float
    p_adjusted: float
    verdict: Verdict
    note: str = ""
    mde: float = math.nan  # minimum detectable worsening at these repeats (between-run model)
    spread: float = math.nan  # run-to-run sd of one run's value (between-run model)

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True, slots=True)
class RunRef:
    path: str
    run_id: str
    status: str
    started_wall_ns: int
    measured_requests: int

    @classmethod
    def of(cls, s: RunSamples) -> RunRef:
        m = s.run.manifest
        return cls(str(s.path), m.run_id, m.status, m.started_wall_ns,
                   s.summary.measured_requests)


@dataclass(frozen=True, slots=True)
class Comparison:
    baseline: RunRef
    candidate: RunRef
    settings: CompareSettings
    slo: SLO | None
    metrics: tuple[MetricComparison, ...]
    manifest_changes: tuple[ManifestChange, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)
    runs: tuple[int, int] = (1, 1)  # runs per arm; more than one: the between-run model

    @property
    def between_runs(self) -> bool:
        """Whether the intervals include run-to-run noise (repeats on at least one side)."""
        return max(self.runs) > 1

    def metric(self, name: str) -> MetricComparison:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"{name!r} was not compared (not in both runs, or not asked for)")

    def with_verdict(self, verdict: Verdict) -> tuple[MetricComparison, ...]:
        return tuple(m for m in self.metrics if m.verdict is verdict)


def judge(change: Interval, p_adjusted: float, direction: Direction, threshold: float,
          alpha: float) -> Verdict:
    """The verdict rule of the module doc."""
    lo, hi = change.low, change.high
    if math.isnan(lo) or math.isnan(hi):
        return Verdict.NOT_TESTED
    significant = p_adjusted < alpha  # False for NaN
    up, down = lo > threshold, hi < -threshold
    bad, good = (up, down) if direction is Direction.LOWER else (down, up)
    if bad and significant:
        return Verdict.REGRESSED
    if good and significant:
        return Verdict.IMPROVED
    if -threshold < lo and hi < threshold:
        return Verdict.UNCHANGED
    return Verdict.INCONCLUSIVE


def _specs(metrics: Collection[str] | None) -> list[MetricSpec]:
    if metrics is None:
        return list(CATALOG.values())
    return [get_metric(m) for m in metrics]


def compare_samples(a: RunSamples, b: RunSamples, *,
                    settings: CompareSettings | None = None,
                    metrics: Collection[str] | None = None) -> Comparison:
    """Compare two loaded runs (``a`` the baseline). ``metrics`` restricts the comparison to
    those names (UnknownMetricError for a name not in the catalog); by default every metric
    both runs have."""
    cfg = settings or CompareSettings()
    wanted = _specs(metrics)
    specs = [s for s in wanted if available(s, a, b)]
    warnings = _skipped(wanted, specs, a, b, explicit=metrics is not None)
    ev = evidence(specs, a, b, confidence=cfg.confidence, n_resamples=cfg.n_resamples,
                  seed=cfg.seed)
    adjusted = _adjusted(ev, cfg.correction)
    out = []
    for e in ev:
        p_adj = adjusted.get(e.test_key, math.nan)
        thr = cfg.min_effect_frac if e.spec.relative else cfg.min_effect_points
        verdict = judge(e.change, p_adj, e.spec.direction, thr, cfg.alpha)
        note = e.note or _note(e, verdict, p_adj, cfg.alpha)
        out.append(MetricComparison(e.spec, e.baseline, e.candidate, e.change, e.test,
                                    e.p_value, p_adj, verdict, note))
    changes = manifest_diff(a.run.manifest, b.run.manifest)
    if any(c.key.startswith("workload.") for c in changes):
        warnings.append("the workloads differ (see the manifest changes): the two runs may "
                        "not be comparable")
    decided = [m for m in out if m.verdict in (Verdict.REGRESSED, Verdict.IMPROVED)]
    if decided and not changes:
        warnings.append(
            f"both runs have the same recorded settings, yet {len(decided)} metric(s) moved "
            "beyond the minimum effect: the intervals cover the sampling noise within each run, "
            "not the machine's run-to-run noise; repeat each configuration (or gate with "
            "budgets above that noise) before reading this as a change")
    warnings += [f"baseline: {w}" for w in a.summary.warnings if not a.bench_only]
    warnings += [f"candidate: {w}" for w in b.summary.warnings if not b.bench_only]
    slo = a.summary.goodput.slo if a.summary.goodput is not None else None
    return Comparison(RunRef.of(a), RunRef.of(b), cfg, slo, tuple(out), changes,
                      tuple(warnings))


def compare_runs(baseline: RunSource, candidate: RunSource, *, slo: SLO | None = None,
                 settings: CompareSettings | None = None,
                 metrics: Collection[str] | None = None) -> Comparison:
    """:func:`compare_samples` of two runs (run directories, loaded runs, or their contexts,
    whose members are shared). RunDirError for an unreadable run."""
    cfg = settings or CompareSettings()
    a = run_samples(baseline, slo, n_slices=cfg.n_slices)
    b = run_samples(candidate, slo, n_slices=cfg.n_slices)
    return compare_samples(a, b, settings=cfg, metrics=metrics)


def _adjusted(ev: list[Evidence], correction: Correction) -> dict[str, float]:
    tests: dict[str, float] = {}
    for e in ev:
        if e.test_key and not math.isnan(e.p_value):
            tests.setdefault(e.test_key, e.p_value)
    keys = list(tests)
    return dict(zip(keys, adjust_pvalues([tests[k] for k in keys], correction), strict=True))


def _note(e: Evidence, verdict: Verdict, p_adj: float, alpha: float) -> str:
    if verdict is Verdict.NOT_TESTED:
        return e.change.method
    if verdict is Verdict.INCONCLUSIVE and not p_adj < alpha:
        beyond = e.change.low > 0 or e.change.high < 0
        if beyond and e.spec.kind is Kind.PERCENTILE:
            return "the CI excludes no change but the rank test of the whole distribution " \
                   "is not significant (a change in the tail only?)"
    if "interval too narrow" in e.change.method:
        return e.change.method.split("; ", 1)[1]
    return ""


def _skipped(wanted: list[MetricSpec], kept: list[MetricSpec], a: RunSamples, b: RunSamples,
             *, explicit: bool) -> list[str]:
    missing = [s for s in wanted if s not in kept]
    if not missing:
        return []
    out = []
    no_engine = [r for r, x in (("baseline", a), ("candidate", b)) if x.engine is None]
    bench = a.bench_only or b.bench_only  # a bench run has no engine to miss
    if no_engine and not bench and any(s.kind in (Kind.ENGINE, Kind.SERVER_PERCENTILE)
                                       for s in missing):
        out.append(f"engine metrics not compared: no engine metrics in the "
                   f"{' and '.join(no_engine)} run")
    if explicit:
        out.append("not in both runs: " + ", ".join(s.name for s in missing))
    return out
