"""Compare two *arms* of runs: a run group (``servescope run --repeat N``) or several run
directories per side.

:func:`expand_arm` turns what a user names into run directories (a run group gives its
repeats). :func:`compare_arms` returns the same :class:`~analyzers.compare.Comparison` as
``compare_runs``:

- one run on each side: exactly :func:`~analyzers.compare.compare_samples` (within-run
  intervals), plus a warning that run-to-run noise is not covered and how many repeats to
  make;
- repeats on either side: every metric judged with the between-run model
  (:mod:`analyzers.between_runs`): the arms' mean values, the change with its interval and
  p-value from the hierarchical bootstrap, the minimum detectable effect (``mde``) and the
  run-to-run spread. When the two arms ran in interleaved rounds (``--repeat N`` of an A/B,
  or any runs whose start times alternate round by round) and ``settings.pair_rounds``, the
  change is judged on the per-round differences (a paired test: the machine's drift from one
  round to the next cancels). The verdict rule is the one of ``analyzers.compare`` (:func:`judge`),
  with Holm's correction over the metrics; a metric whose MDE is above the minimum effect
  says how many repeats per arm would bring it below.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from analyzers.between_runs import BetweenRuns, between_runs, interleaved_pairs, runs_needed
from analyzers.compare import (
    CompareSettings,
    Comparison,
    MetricComparison,
    RunRef,
    Verdict,
    compare_samples,
    judge,
)
from analyzers.compare_metrics import available
from analyzers.manifest_diff import manifest_diff
from analyzers.metric_catalog import CATALOG, MetricSpec, get_metric
from analyzers.run_samples import RunSamples, run_samples
from analyzers.significance import adjust_pvalues
from servescope.rundir.layout import RunDirError

if TYPE_CHECKING:
    from analyzers.goodput import SLO

__all__ = ["NOISE_NOT_COVERED", "arm_ref", "compare_arm_samples", "compare_arms", "expand_arm"]

SUGGESTED_REPEATS = 3
NOISE_NOT_COVERED = (
    "one run per side: the intervals cover the noise within each run, not the run-to-run "
    "noise of the machine (on vLLM-CPU here 5-15 % in latency); repeat each side "
    f"(servescope run --repeat {SUGGESTED_REPEATS}, or several run directories per side) to "
    "have it measured")


def expand_arm(paths: Sequence[str | Path]) -> list[Path]:
    """Run directories of an arm: a run group gives its repeats, a run directory itself
    (anything else fails when it is read). RunDirError for a malformed group."""
    from servescope.rundir.group import is_group, read_group

    out: list[Path] = []
    for p in map(Path, paths):
        if is_group(p):
            g = read_group(p)
            if not g.runs:
                raise RunDirError(f"run group {p} lists no runs")
            out += g.run_dirs()
        else:
            out.append(p)  # not a run directory: reading it says so
    if not out:
        raise RunDirError("an arm needs at least one run directory")
    return out


def arm_ref(label: Path | str, runs: Sequence[RunSamples]) -> RunRef:
    """One :class:`RunRef` standing for an arm (its first run's when there is one run)."""
    if len(runs) == 1:
        return RunRef.of(runs[0])
    refs = [RunRef.of(r) for r in runs]
    status = "complete" if all(r.status == "complete" for r in refs) else \
        next(r.status for r in refs if r.status != "complete")
    return RunRef(str(label), f"{Path(label).name} ({len(runs)} runs)", status,
                  min(r.started_wall_ns for r in refs), sum(r.measured_requests for r in refs))


def _specs(metrics: Collection[str] | None) -> list[MetricSpec]:
    return list(CATALOG.values()) if metrics is None else [get_metric(m) for m in metrics]


def compare_arm_samples(a: Sequence[RunSamples], b: Sequence[RunSamples], *,
                        settings: CompareSettings | None = None,
                        metrics: Collection[str] | None = None,
                        labels: tuple[str, str] = ("baseline", "candidate")) -> Comparison:
    """:func:`compare_arms` on loaded runs."""
    cfg = settings or CompareSettings()
    if len(a) == 1 and len(b) == 1:
        c = compare_samples(a[0], b[0], settings=cfg, metrics=metrics)
        return replace(c, warnings=(NOISE_NOT_COVERED, *c.warnings))
    wanted = _specs(metrics)
    specs = [s for s in wanted if all(available(s, x, y) for x in a for y in b)]
    warnings: list[str] = []
    if metrics is not None and (missing := [s.name for s in wanted if s not in specs]):
        warnings.append("not in every run: " + ", ".join(missing))
    pairs = interleaved_pairs([RunRef.of(r).started_wall_ns for r in a],
                              [RunRef.of(r).started_wall_ns for r in b]) \
        if cfg.pair_rounds else None
    model = between_runs(specs, a, b, confidence=cfg.confidence, n_resamples=cfg.n_resamples,
                         seed=cfg.seed, pairs=pairs)
    if model is None:  # unreachable: one side has repeats (checked above)
        raise ValueError("the between-run model needs repeats on one side")
    ps = adjust_pvalues([model[s.name].p_value for s in specs], cfg.correction)
    out = [_metric(model[s.name], p, cfg) for s, p in zip(specs, ps, strict=True)]
    if pairs is not None:
        warnings.append(f"the arms ran in {len(pairs)} interleaved rounds: each change is "
                        "judged on the per-round differences (paired t)")
    changes = manifest_diff(a[0].run.manifest, b[0].run.manifest)
    if any(c.key.startswith("workload.") for c in changes):
        warnings.append("the workloads differ (see the manifest changes): the two arms may "
                        "not be comparable")
    for side, runs in (("baseline", a), ("candidate", b)):
        inner = {c.key for r in runs[1:] for c in manifest_diff(runs[0].run.manifest,
                                                                 r.run.manifest)}
        if inner:
            warnings.append(f"the {side}'s runs differ among themselves in: "
                            + ", ".join(sorted(inner)))
        if len(runs) == 1:
            warnings.append(f"the {side} has one run: its run-to-run noise is taken from the "
                            "other side's repeats")
    slo = a[0].summary.goodput.slo if a[0].summary.goodput is not None else None
    return Comparison(arm_ref(labels[0], a), arm_ref(labels[1], b), cfg, slo, tuple(out),
                      changes, tuple(warnings), (len(a), len(b)))


def _metric(m: BetweenRuns, p_adj: float, cfg: CompareSettings) -> MetricComparison:
    thr = cfg.min_effect_frac if m.spec.relative else cfg.min_effect_points
    verdict = judge(m.change, p_adj, m.spec.direction, thr, cfg.alpha)
    if math.isnan(m.change.low):
        verdict = Verdict.NOT_TESTED
    note = ""
    if verdict is Verdict.NOT_TESTED:
        note = m.change.method if math.isnan(m.change.estimate) else \
            "every run has the same value: no run-to-run variance to judge it by"
    elif math.isfinite(m.mde) and m.mde > thr:
        n = max(m.n_runs)
        unit = "%" if m.spec.relative else " pp"
        scale = 100.0
        note = (f"MDE {m.mde * scale:.0f}{unit} at {m.n_runs[0]}/{m.n_runs[1]} runs: smaller "
                f"changes are within run-to-run noise; ~{runs_needed(m.mde, thr, n)} runs per "
                f"side would detect {thr * scale:g}{unit}")
    return MetricComparison(m.spec, m.baseline, m.candidate, m.change, m.method, m.p_value,
                            p_adj, verdict, note, m.mde, m.spread)


def compare_arms(baseline: Sequence[str | Path], candidate: Sequence[str | Path], *,
                 slo: SLO | None = None, settings: CompareSettings | None = None,
                 metrics: Collection[str] | None = None) -> Comparison:
    """Compare two arms, each run directories and/or run groups (module doc)."""
    cfg = settings or CompareSettings()
    a = [run_samples(p, slo, n_slices=cfg.n_slices) for p in expand_arm(baseline)]
    b = [run_samples(p, slo, n_slices=cfg.n_slices) for p in expand_arm(candidate)]
    labels = (_label(baseline), _label(candidate))
    return compare_arm_samples(a, b, settings=cfg, metrics=metrics, labels=labels)


def _label(paths: Sequence[str | Path]) -> str:
    return str(paths[0]) if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1})"
