"""The regression gate: a candidate run checked against a baseline run and a budgets file.

:func:`run_gate` returns a :class:`GateResult` whose ``exit_code`` is **0** (every budget
holds), **1** (at least one budget breached) or **2** (the input cannot be judged: a run
that cannot be read, is not complete, is empty, has too few requests, too many errors, or a
client that fell behind its schedule, or a budgeted metric that one of the runs lacks).
Validity outranks regression: a broken run's numbers prove nothing either way.

**When a budget is breached.** An absolute limit (``<= X``, ``>= X``) is checked on the
candidate's value. A relative budget ``B`` (the worsening allowed) is breached only when the
**whole confidence interval** of the change is beyond it: for a lower-is-better metric when the
CI's low end is above ``+B``, for a higher-is-better one when its high end is below ``−B``. So a
change the run's own noise could explain never fails the gate. When the point estimate is
beyond ``B`` but the CI reaches back inside, the budget is ``uncertain``: reported, not failed
(more requests narrow the CI). The intervals are simultaneous over the file's relative
budgets (Bonferroni: each at ``1 − (1 − confidence) / m``), so with ``m`` budgets the chance
that noise alone breaches any of them stays below ``(1 − confidence) / 2``.

**With repeats** (a run group or several runs on either side) relative budgets, and noise
budgets (``"3x noise"``: ``k`` times the measured run-to-run spread), are judged against the
between-run model (``analyzers.between_runs``): breached when the change is beyond the budget
**and** its between-run interval excludes no change; ``uncertain`` when beyond but within
run-to-run noise. Arms that ran in interleaved rounds are judged on the per-round
differences (paired; ``[settings] pair_rounds = false`` turns it off). The message names the
minimum detectable effect when it is above the budget.

A baseline store is a directory of run directories and run groups; its baseline is the newest
complete entry (by ``started_wall_ns``), never the candidate itself: a stored group keeps its
repeats, so a single candidate run is judged against the baseline's run-to-run noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from analyzers.bootstrap import Interval
from analyzers.budgets import Budget, BudgetFile, BudgetKind, Validity
from analyzers.compare import CompareSettings, Comparison, MetricComparison, RunRef
from analyzers.compare_groups import arm_ref, compare_arm_samples, expand_arm
from analyzers.context import RunContext
from analyzers.metric_catalog import Direction
from analyzers.run_samples import RunSamples, run_samples
from servescope.rundir.layout import RunDirError

if TYPE_CHECKING:
    from analyzers.context import RunSource

__all__ = [
    "EXIT_INVALID",
    "EXIT_PASS",
    "EXIT_REGRESSION",
    "BudgetResult",
    "BudgetStatus",
    "GateResult",
    "ValidityIssue",
    "check_validity",
    "evaluate_budget",
    "latest_baseline",
    "run_gate",
]

from servescope.exitcodes import EXIT_INVALID, EXIT_PASS, EXIT_REGRESSION

_MIN_TAIL_RESAMPLES = 10  # resamples beyond each end of a CI, at least


class BudgetStatus(StrEnum):
    PASS = "pass"  # noqa: S105 - a status, not a password
    BREACH = "breach"
    UNCERTAIN = "uncertain"  # point estimate beyond the budget, CI not wholly: not failed
    MISSING = "missing"  # the metric is not measured in both runs: invalid input


@dataclass(frozen=True, slots=True)
class BudgetResult:
    budget: Budget
    status: BudgetStatus
    baseline: float
    candidate: float
    change: Interval | None  # relative budgets: the change and its CI
    message: str


@dataclass(frozen=True, slots=True)
class ValidityIssue:
    run: str  # "baseline" or "candidate"
    check: str  # unreadable, status, empty, requests, errors, schedule
    message: str


@dataclass(frozen=True, slots=True)
class GateResult:
    budgets_path: str
    baseline: RunRef | None
    candidate: RunRef | None
    results: tuple[BudgetResult, ...]
    issues: tuple[ValidityIssue, ...]
    comparison: Comparison | None
    confidence: float  # of each relative budget's interval (after Bonferroni)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def exit_code(self) -> int:
        if self.issues or any(r.status is BudgetStatus.MISSING for r in self.results):
            return EXIT_INVALID
        if any(r.status is BudgetStatus.BREACH for r in self.results):
            return EXIT_REGRESSION
        return EXIT_PASS

    @property
    def verdict(self) -> str:
        return {EXIT_PASS: "pass", EXIT_REGRESSION: "regression",
                EXIT_INVALID: "invalid"}[self.exit_code]

    def breaches(self) -> tuple[BudgetResult, ...]:
        return tuple(r for r in self.results if r.status is BudgetStatus.BREACH)


def _store_entry(d: Path) -> tuple[int, bool] | None:
    """(start, complete) of a run directory or a run group in a store; None: neither."""
    from servescope.rundir.group import is_group, read_group
    from servescope.rundir.manifest import read_manifest

    try:
        if is_group(d):
            ms = [read_manifest(r) for r in read_group(d).run_dirs()]
            if not ms:
                return None
            return min(m.started_wall_ns for m in ms), all(m.status == "complete" for m in ms)
        m = read_manifest(d)
    except RunDirError:
        return None
    return m.started_wall_ns, m.status == "complete"


def latest_baseline(store: str | Path, *, exclude: str | Path | None = None) -> Path:
    """The newest complete run directory or run group (every repeat complete) in ``store``
    (by start time), other than ``exclude``. RunDirError when the store is missing or holds
    none. A run group keeps its repeats: the gate then knows the baseline's run-to-run
    noise."""
    root = Path(store)
    if not root.is_dir():
        raise RunDirError(f"baseline store {root} does not exist or is not a directory")
    skip = Path(exclude).resolve() if exclude is not None else None
    best: tuple[int, Path] | None = None
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if skip is not None and (d.resolve() == skip or d.resolve() in skip.parents):
            continue
        entry = _store_entry(d)
        if entry is not None and entry[1] and (best is None or entry[0] > best[0]):
            best = (entry[0], d)
    if best is None:
        raise RunDirError(f"baseline store {root} holds no complete run directory")
    return best[1]


def check_validity(s: RunSamples, v: Validity, role: str) -> list[ValidityIssue]:
    """Why ``s`` cannot be judged (empty list: it can)."""
    out: list[ValidityIssue] = []
    status = s.run.manifest.status
    if v.require_complete and status != "complete":
        out.append(ValidityIssue(role, "status", f"the {role} run's status is {status!r}, not "
                                 "'complete'"))
    sm = s.summary
    if s.bench_only:  # a bench run (analyzers/bandwidth.py): no requests to check
        return out
    if sm.measured_requests == 0:
        out.append(ValidityIssue(role, "empty", f"the {role} run has no measured requests"))
        return out
    if sm.measured_requests < v.min_requests:
        out.append(ValidityIssue(role, "requests", f"the {role} run has {sm.measured_requests}"
                                 f" measured requests, fewer than min_requests = "
                                 f"{v.min_requests}"))
    if sm.error_rate > v.max_error_rate_frac:
        out.append(ValidityIssue(role, "errors", f"the {role} run's error rate is "
                                 f"{sm.error_rate:.1%}, above max_error_rate = "
                                 f"{v.max_error_rate_frac:.1%}"))
    lag = sm.latency.schedule_lag_ns
    if lag is not None and lag.count and lag.p99 / 1e6 > v.max_schedule_lag_p99_ms:
        out.append(ValidityIssue(role, "schedule", f"the {role} run's client fell behind its "
                                 f"schedule: p99 lag {lag.p99 / 1e6:.1f} ms, above "
                                 f"max_schedule_lag_p99_ms = {v.max_schedule_lag_p99_ms:g}"))
    return out


def evaluate_budget(b: Budget, comparison: Comparison) -> BudgetResult:
    """One budget against the comparison (module doc: the breach rule)."""
    try:
        m = comparison.metric(b.metric)
    except KeyError:
        return BudgetResult(b, BudgetStatus.MISSING, math.nan, math.nan, None,
                            f"{b.metric} is not measured in both runs")
    if b.kind in (BudgetKind.MAX, BudgetKind.MIN):
        value = m.candidate
        if math.isnan(value):
            return BudgetResult(b, BudgetStatus.MISSING, m.baseline, value, None,
                                f"the candidate has no {b.metric}")
        ok = value <= b.limit if b.kind is BudgetKind.MAX else value >= b.limit
        return BudgetResult(b, BudgetStatus.PASS if ok else BudgetStatus.BREACH, m.baseline,
                            value, None, "" if ok else f"{b.metric} is beyond {b.text}")
    ch = m.change
    if math.isnan(ch.estimate):
        return BudgetResult(b, BudgetStatus.MISSING, m.baseline, m.candidate, ch,
                            f"no relative change: {ch.method}")
    limit, what = b.limit, b.text
    if b.kind is BudgetKind.NOISE:
        if not (comparison.between_runs and math.isfinite(m.spread)):
            return BudgetResult(b, BudgetStatus.MISSING, m.baseline, m.candidate, ch,
                                f"{b.text} needs the run-to-run spread: give repeats (a run "
                                "group, or several runs) on at least one side")
        limit = b.limit * m.spread
        what = f"{b.text} (= {limit:+.1%}, spread {m.spread:.1%})"
    if comparison.between_runs:
        return _between(b, m, limit, what)
    sign = 1.0 if m.spec.direction is Direction.LOWER else -1.0
    worse_est = sign * ch.estimate  # > 0: worse
    lo, hi = ch.low, ch.high
    least_worse = sign * (lo if sign > 0 else hi)  # the CI end nearest to "better"
    if not math.isnan(least_worse) and least_worse > limit:
        status, msg = BudgetStatus.BREACH, f"the whole {ch.confidence:.1%} CI is beyond {what}"
    elif worse_est > limit:
        status = BudgetStatus.UNCERTAIN
        msg = (f"the change is beyond {what} but its {ch.confidence:.1%} CI reaches back "
               "inside: not failed (more requests narrow the CI)"
               if not math.isnan(least_worse) else f"no interval ({ch.method}): not failed")
    else:
        status, msg = BudgetStatus.PASS, ""
    return BudgetResult(b, status, m.baseline, m.candidate, ch, msg)


def _between(b: Budget, m: MetricComparison, limit: float, what: str) -> BudgetResult:
    """Repeats: breached when the change is beyond the budget **and** its between-run
    interval excludes no change (the worsening is real, not run-to-run noise)."""
    ch = m.change
    sign = 1.0 if m.spec.direction is Direction.LOWER else -1.0
    worse_est = sign * ch.estimate
    least_worse = sign * (ch.low if sign > 0 else ch.high)
    mde = ""
    if math.isfinite(m.mde) and m.mde > limit:
        mde = (f"; at these repeats the MDE is {m.mde:.1%}: a worsening of {limit:.1%} is "
               "caught less than 90 % of the time")
    if worse_est > limit and least_worse > 0:
        return BudgetResult(b, BudgetStatus.BREACH, m.baseline, m.candidate, ch,
                            f"beyond {what}, and the {ch.confidence:.1%} between-run CI "
                            "excludes no change")
    if worse_est > limit:
        return BudgetResult(b, BudgetStatus.UNCERTAIN, m.baseline, m.candidate, ch,
                            f"beyond {what}, but within run-to-run noise (the "
                            f"{ch.confidence:.1%} CI includes no change): not failed{mde}")
    return BudgetResult(b, BudgetStatus.PASS, m.baseline, m.candidate, ch, mde.lstrip("; "))


def _arm(source: RunSource | Sequence[str | Path]) -> list[RunSource]:
    """The runs of an arm: a run group's repeats, several run directories, or one run."""
    from servescope.rundir.group import is_group

    if isinstance(source, (list, tuple)):
        return list(expand_arm(source))
    if isinstance(source, (str, Path)) and is_group(Path(source)):
        return list(expand_arm([source]))
    return [source]  # type: ignore[list-item]


def _load_arm(source: RunSource | Sequence[str | Path], budgets: BudgetFile, role: str,
              n_slices: int) -> tuple[list[RunSamples], list[ValidityIssue]]:
    try:
        runs = _arm(source)
    except RunDirError as exc:
        return [], [ValidityIssue(role, "unreadable", str(exc))]
    out: list[RunSamples] = []
    issues: list[ValidityIssue] = []
    for r in runs:
        who = role if len(runs) == 1 else f"{role} ({Path(RunContext.of(r).path).name})"
        try:
            s = run_samples(r, budgets.slo, n_slices=n_slices)
        except RunDirError as exc:
            issues.append(ValidityIssue(role, "unreadable", str(exc)))
            continue
        issues += [replace(i, run=role) for i in check_validity(s, budgets.validity, who)]
        out.append(s)
    return out, issues


def _path_of(source: RunSource | Sequence[str | Path]) -> Path | None:
    if isinstance(source, (list, tuple)):
        return Path(source[0]) if len(source) == 1 else None
    return Path(RunContext.of(source).path)  # type: ignore[arg-type]


def run_gate(candidate: RunSource | Sequence[str | Path], budgets: BudgetFile, *,
             baseline: RunSource | Sequence[str | Path] | None = None,
             baseline_store: str | Path | None = None) -> GateResult:
    """Check ``candidate`` against ``baseline`` or the latest complete entry of
    ``baseline_store``. Each side is a run (a run directory or its context), a run group, or
    a list of run directories and groups; with repeats on either side the budgets are judged
    against the between-run model (``analyzers.between_runs``). Unreadable or invalid runs
    come back as ``issues`` (exit code 2), not exceptions, so a report can still be
    written."""
    if (baseline is None) == (baseline_store is None):
        raise ValueError("give exactly one of a baseline run or a baseline store")
    settings = budgets.settings
    n_rel = sum(1 for b in budgets.budgets if b.kind in (BudgetKind.RELATIVE, BudgetKind.NOISE))
    confidence = 1 - (1 - settings.confidence) / max(n_rel, 1)
    resamples = max(settings.n_resamples,
                    math.ceil(_MIN_TAIL_RESAMPLES / ((1 - confidence) / 2)))
    cfg = CompareSettings(confidence=confidence, n_resamples=resamples, seed=settings.seed,
                          pair_rounds=settings.pair_rounds)
    notes: list[str] = []
    issues: list[ValidityIssue] = []
    base = baseline
    if baseline_store is not None:
        try:
            base = latest_baseline(baseline_store, exclude=_path_of(candidate))
            notes.append(f"baseline: {base} (newest complete run or run group in {baseline_store})")
        except RunDirError as exc:
            issues.append(ValidityIssue("baseline", "unreadable", str(exc)))
    a, a_issues = _load_arm(base, budgets, "baseline", cfg.n_slices) if base is not None \
        else ([], [])
    b, b_issues = _load_arm(candidate, budgets, "candidate", cfg.n_slices)
    issues += a_issues + b_issues
    refs = (arm_ref(_label(base), a) if a else None, arm_ref(_label(candidate), b) if b
            else None)
    if not a or not b or issues:
        return GateResult(budgets.path, *refs, (), tuple(issues), None, confidence,
                          tuple(notes))
    metrics = list(dict.fromkeys(bu.metric for bu in budgets.budgets))
    comparison = compare_arm_samples(a, b, settings=cfg, metrics=metrics,
                                     labels=(_label(base), _label(candidate)))
    if comparison.between_runs:
        notes.append(f"{len(a)}/{len(b)} runs: relative budgets are judged against the "
                     "between-run model: a budget fails when the change is beyond it and "
                     "its interval excludes no change")
    results = tuple(evaluate_budget(bu, comparison) for bu in budgets.budgets)
    return GateResult(budgets.path, *refs, results, (), comparison, confidence, tuple(notes))


def _label(source: object) -> str:
    if isinstance(source, (list, tuple)):
        return str(source[0]) if len(source) == 1 else f"{source[0]} (+{len(source) - 1})"
    if isinstance(source, (str, Path)):
        return str(source)
    return str(getattr(source, "path", source))
