"""Between-run error model: what repeats of each arm say about a change, its noise, and the
smallest change N repeats can detect.

For one metric and two arms of runs (``A``, the baseline, ``N_A`` runs; ``B``, ``N_B`` runs):

- **Value of an arm**: the mean of its runs' values (each run's value is the one ``summarize``
  reports: a percentile of its requests, its throughput, its error rate).
- **Hierarchical bootstrap** of each arm: a replicate draws ``N`` runs with replacement, and
  for each drawn run one bootstrap replicate of its value from its own requests (percentiles:
  requests resampled, ITL by request; throughputs: the window's slice rates resampled;
  proportions: a binomial draw; engine gauges and server histograms: the run's value, no
  within-run replicate); the replicate of the arm is the mean over the drawn runs. The
  replicates' variance is ``((N − 1)/N) · s²/N + w/N``, with ``s²`` the runs' sample
  variance (run-to-run and within-run noise together) and ``w`` the mean within-run variance
  of one run's value (from the second stage): the first stage understates ``s²`` and the
  second counts the within-run noise twice. The arm's variance is therefore taken as
  ``(var − w/N) · N/(N − 1)`` (= ``s²/N``), never below ``w/N``. The second stage also gives
  ``within_sd``: how much of a run's spread its own requests explain (longer runs shrink that
  part; only more repeats shrink the rest).
- **Change**: ``mean_B / mean_A − 1`` for metrics compared as ratios (the interval on the log
  scale: ``se² = var(log A) + var(log B)``, by the delta method from the replicates), a
  difference for proportions. The interval and the p-value use Student's t with Welch's
  degrees of freedom (each arm's ``N − 1``): with three runs per arm the bootstrap's spread
  alone is far too optimistic a quantile.
- **One run on one side**: its run-to-run variance cannot be seen, so it is borrowed from the
  other arm (the other arm's per-run variance, ``s² / 1``), with that arm's degrees of freedom:
  a single candidate run against a stored baseline of repeats is judged against the measured
  noise. One run on **both** sides: no between-run model (``None``): compare and gate fall
  back to within-run intervals and say that run-to-run noise is not covered.
- **Spread**: the run-to-run standard deviation of one run's value (relative, on the log
  scale, for ratio metrics), pooled over the arms' deviations from their own means.
- **Interleaved rounds** (``pairs``: the arms ran in rounds, each round one run of each arm,
  a round's runs all before the next round's, as ``--repeat N`` with two arms or
  :func:`interleaved_pairs` finds from the runs' start times): the design is analysed as
  blocked. Each round gives a difference ``d_i`` (``log B_i − log A_i`` for ratio metrics,
  ``B_i − A_i`` otherwise) in which the machine's slow drift over the rounds cancels; the
  change is their mean (for ratios ``exp(mean d) − 1``: the geometric mean of the per-round
  ratios), its standard error ``sd(d)/√N`` (never below what the runs' own requests explain,
  ``√((w_A + w_B)/N)``), and the interval and p-value are Student's t with ``N − 1`` df (a
  paired t-test on the rounds).
- **Minimum detectable effect** (MDE): the smallest true change that this design detects
  with probability ``power`` (default 0.9) at the two-sided level ``alpha``:
  ``(t(1 − alpha/2, df) + t(power, df)) · se``, as a worsening (relative, or points).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analyzers.bootstrap import Interval, percentile_replicates
from analyzers.metric_catalog import Direction, Kind, MetricSpec
from analyzers.run_samples import RunSamples

__all__ = ["BetweenRuns", "between_runs", "interleaved_pairs", "run_value", "runs_needed"]

_F = npt.NDArray[np.float64]
METHOD = "hierarchical bootstrap (runs, then requests) + Welch t"
METHOD_PAIRED = "interleaved rounds: per-round differences, paired t"


@dataclass(frozen=True, slots=True)
class BetweenRuns:
    """One metric over two arms of runs. ``change``/``mde``/``spread`` are relative (0.1 =
    10 %) when ``spec.relative``, else differences in the metric's unit."""

    spec: MetricSpec
    baseline: float  # mean over the baseline's runs
    candidate: float
    baseline_runs: tuple[float, ...]
    candidate_runs: tuple[float, ...]
    change: Interval
    p_value: float
    se: float  # of the change (log scale for ratio metrics)
    df: float
    spread: float  # run-to-run sd of one run's value; NaN when no arm has 2 runs
    mde: float  # minimum detectable worsening at this N, alpha and power
    within_sd: float = math.nan  # sd of one run's value from its own requests (same scale)
    method: str = METHOD  # METHOD_PAIRED when judged by interleaved rounds

    @property
    def n_runs(self) -> tuple[int, int]:
        return len(self.baseline_runs), len(self.candidate_runs)


def run_value(spec: MetricSpec, s: RunSamples) -> float:
    """The value ``summarize`` reports for ``spec`` in one run (NaN when undefined)."""
    sm = s.summary
    if spec.kind is Kind.PERCENTILE:
        return float(getattr(getattr(sm.latency, spec.source), f"p{spec.percentile:g}"))
    if spec.kind is Kind.RATE:
        if spec.source == "good_requests_per_s":
            return sm.goodput.good_requests_per_s if sm.goodput else math.nan
        return float(getattr(sm, spec.source))
    if spec.kind is Kind.PROPORTION:
        k, n = _counts(spec, s)
        return k / n if n else math.nan
    if spec.kind is Kind.SERVER_PERCENTILE:
        h = s.server.get(spec.source)
        return h.quantile((spec.percentile or 0) / 100).value_s * 1e9 if h else math.nan
    v = getattr(s.engine, spec.source, None) if s.engine is not None else None
    return float(v) if v is not None else math.nan


def _counts(spec: MetricSpec, s: RunSamples) -> tuple[int, int]:
    n = s.summary.measured_requests
    if spec.name == "error_rate":
        return n - s.summary.successful_requests, n
    return max(s.good, 0), n


def _within(spec: MetricSpec, s: RunSamples, b: int, seed: int) -> _F:
    """``b`` bootstrap replicates of the run's value from its own samples."""
    value = run_value(spec, s)
    if spec.kind is Kind.PERCENTILE and spec.percentile is not None:
        if spec.source == "itl_per_token_ns":
            rep = percentile_replicates(s.itl_ns, [spec.percentile], n_resamples=b, seed=seed,
                                        clusters=s.itl_request)[0]
        else:
            rep = percentile_replicates(s.latency_ns[spec.source], [spec.percentile],
                                        n_resamples=b, seed=seed)[0]
        return rep - np.nanmean(rep) + value if np.isfinite(rep).all() else np.full(b, value)
    rng = np.random.default_rng(seed)
    if spec.kind is Kind.RATE and (sl := s.slice_rates.get(spec.name)) is not None \
            and sl.size >= 2:
        drawn = sl[rng.integers(0, sl.size, size=(b, sl.size))].mean(axis=1)
        return np.asarray(drawn * (value / sl.mean()) if sl.mean() else drawn, dtype=np.float64)
    if spec.kind is Kind.PROPORTION:
        k, n = _counts(spec, s)
        if n:
            return np.asarray(rng.binomial(n, k / n, size=b) / n, dtype=np.float64)
    return np.full(b, value)


def _arm(spec: MetricSpec, runs: Sequence[RunSamples], b: int, seed: int
         ) -> tuple[_F, _F, float]:
    """(per-run values, hierarchical replicates of the arm's mean, the mean within-run
    variance of one run's value: of its log for ratio metrics)."""
    values = np.asarray([run_value(spec, r) for r in runs], dtype=np.float64)
    within = np.stack([_within(spec, r, b, seed + 7919 * i) for i, r in enumerate(runs)])
    rng = np.random.default_rng(seed + 104729)
    n = len(runs)
    pick = rng.integers(0, n, size=(b, n))
    reps = within[pick, np.arange(b)[:, None]].mean(axis=1)
    w = within if not spec.relative else _log(within)
    with np.errstate(invalid="ignore"):
        w_var = float(np.nanmean(np.nanvar(w, axis=1, ddof=1))) if b > 1 else 0.0
    return values, np.asarray(reps, dtype=np.float64), w_var if math.isfinite(w_var) else 0.0


def _t(q: float, df: float) -> float:
    from scipy.stats import t

    return float(t.ppf(q, df)) if math.isfinite(df) and df > 0 else float("nan")


def _log(x: _F) -> _F:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.log(np.where(x > 0, x, np.nan)), dtype=np.float64)


def _var(reps: _F, n: int, log: bool, within: float) -> float:
    """Variance of the arm's value from its hierarchical replicates. Their variance is
    ``((n − 1)/n) · s²/n + within/n`` (``s²``: the runs' sample variance, which already holds
    their within-run noise): the second stage counts the within-run noise twice and the first
    understates ``s²``. Both undone: ``(var − within/n) · n/(n − 1)``, never below
    ``within/n``."""
    x = _log(reps) if log else reps
    x = x[np.isfinite(x)]
    if x.size < 2:
        return math.nan
    v = float(x.var(ddof=1))
    if n < 2:
        return v
    return max((v - within / n) * n / (n - 1), within / n)


def _spread(groups: Sequence[_F], log: bool) -> tuple[float, int]:
    """Pooled sd of one run's value about its arm's mean, and its degrees of freedom."""
    ss, df = 0.0, 0
    for v in groups:
        x = _log(v) if log else v
        x = x[np.isfinite(x)]
        if x.size >= 2:
            ss += float(((x - x.mean()) ** 2).sum())
            df += x.size - 1
    return (math.sqrt(ss / df), df) if df else (math.nan, 0)


def interleaved_pairs(a_starts_ns: Sequence[int], b_starts_ns: Sequence[int]
                      ) -> list[tuple[int, int]] | None:
    """``(i_A, i_B)`` index pairs of the rounds in which the two arms' runs ran, from their
    start times: both arms have the same number ``N >= 2`` of runs and, in time order, the
    ``k``-th run of each arm started before the ``(k+1)``-th run of either (A B A B …, or each
    round in its own order). ``None`` for any other schedule (for example all of A, then all
    of B, or a stored baseline): the arms are then compared unpaired."""
    n = len(a_starts_ns)
    if n < 2 or len(b_starts_ns) != n:
        return None
    ia = sorted(range(n), key=lambda i: a_starts_ns[i])
    ib = sorted(range(n), key=lambda i: b_starts_ns[i])
    for k in range(n - 1):
        last = max(a_starts_ns[ia[k]], b_starts_ns[ib[k]])
        if last >= min(a_starts_ns[ia[k + 1]], b_starts_ns[ib[k + 1]]):
            return None
    return list(zip(ia, ib, strict=True))


def between_runs(specs: Sequence[MetricSpec], a: Sequence[RunSamples],
                 b: Sequence[RunSamples], *, confidence: float = 0.95, power: float = 0.9,
                 n_resamples: int = 1000, seed: int = 0,
                 pairs: Sequence[tuple[int, int]] | None = None
                 ) -> dict[str, BetweenRuns] | None:
    """The between-run model of each spec (module doc); ``None`` with one run per arm.
    ``pairs``: the rounds of an interleaved schedule (:func:`interleaved_pairs`), judged
    paired."""
    if not a or not b:
        raise ValueError("each arm needs at least one run")
    if len(a) < 2 and len(b) < 2:
        return None
    if pairs is not None and (len(pairs) < 2 or any(
            not (0 <= i < len(a) and 0 <= j < len(b)) for i, j in pairs)):
        raise ValueError("pairs must name at least two rounds of runs of the two arms")
    out = {}
    for k, spec in enumerate(specs):
        m = _one(spec, a, b, confidence, power, n_resamples, seed + 31 * k)
        if pairs is not None and math.isfinite(m.change.low):
            m = _paired(m, pairs, confidence, power)
        out[spec.name] = m
    return out


def _paired(m: BetweenRuns, pairs: Sequence[tuple[int, int]], confidence: float,
            power: float) -> BetweenRuns:
    """``m`` judged by its interleaved rounds (module doc); the arms' means, spread and
    within-run sd stay those of ``m``."""
    log = m.spec.relative
    va = np.asarray([m.baseline_runs[i] for i, _ in pairs], dtype=np.float64)
    vb = np.asarray([m.candidate_runs[j] for _, j in pairs], dtype=np.float64)
    d = np.log(vb) - np.log(va) if log else vb - va
    n = d.size
    df = float(n - 1)
    floor = math.sqrt(2.0 / n) * m.within_sd if math.isfinite(m.within_sd) else 0.0
    se = max(float(d.std(ddof=1)) / math.sqrt(n), floor)
    centre = float(d.mean())
    lo, hi, p, mde = _t_interval(m.spec, centre, se, df, confidence, power)
    est = math.expm1(centre) if log else centre
    ci = Interval(est, lo, hi, confidence, n, f"{METHOD_PAIRED} ({n} rounds, {df:.0f} df)")
    return BetweenRuns(m.spec, m.baseline, m.candidate, m.baseline_runs, m.candidate_runs, ci,
                       p, se, df, m.spread, mde, m.within_sd, METHOD_PAIRED)


def _t_interval(spec: MetricSpec, centre: float, se: float, df: float,  # noqa: PLR0917
                confidence: float, power: float) -> tuple[float, float, float, float]:
    """(low, high, p-value, MDE) of a change whose ``centre`` (log scale for ratio metrics)
    has standard error ``se`` with ``df`` degrees of freedom: Student's t interval at
    ``confidence``, its two-sided p-value, and the smallest worsening detected with
    probability ``power`` (module doc), back on the change's own scale."""
    tq = _t(1 - (1 - confidence) / 2, df)
    lo, hi = centre - tq * se, centre + tq * se
    mde_scale = (tq + _t(power, df)) * se
    if not spec.relative:
        return lo, hi, _p(centre, se, df), mde_scale
    mde = math.expm1(mde_scale) if spec.direction is Direction.LOWER \
        else -math.expm1(-mde_scale)
    return math.expm1(lo), math.expm1(hi), _p(centre, se, df), mde


def _one(spec: MetricSpec, a: Sequence[RunSamples], b: Sequence[RunSamples],  # noqa: PLR0917
         confidence: float, power: float, n_resamples: int, seed: int) -> BetweenRuns:
    log = spec.relative
    va, ra, wa = _arm(spec, a, n_resamples, seed)
    vb, rb, wb = _arm(spec, b, n_resamples, seed + 1)
    na, nb = len(a), len(b)
    if log and not (np.all(va > 0) and np.all(vb > 0)):
        ci = Interval(math.nan, math.nan, math.nan, confidence, min(na, nb),
                      "a run's value is 0 or undefined: relative change not tested")
        return BetweenRuns(spec, float(np.nanmean(va)), float(np.nanmean(vb)),
                           tuple(map(float, va)), tuple(map(float, vb)), ci, math.nan,
                           math.nan, math.nan, math.nan, math.nan, math.nan)
    ma, mb = float(np.nanmean(va)), float(np.nanmean(vb))
    spread, spread_df = _spread([va, vb], log)
    var_a, var_b = _var(ra, na, log, wa), _var(rb, nb, log, wb)
    # one run on a side: its run-to-run variance (within-run noise included) is borrowed
    # from the other side's runs
    if na < 2:
        var_a = max(var_a, spread ** 2) if math.isfinite(spread) else math.nan
    if nb < 2:
        var_b = max(var_b, spread ** 2) if math.isfinite(spread) else math.nan
    df = _welch_df(var_a, na, var_b, nb, spread_df)
    se = math.sqrt(var_a + var_b) if var_a + var_b >= 0 else math.nan
    est = (mb / ma - 1.0 if ma > 0 and mb > 0 else math.nan) if log else mb - ma
    centre = math.log1p(est) if log and math.isfinite(est) else est
    lo, hi, p, mde = _t_interval(spec, centre, se, df, confidence, power)
    ci = Interval(est, lo, hi, confidence, min(na, nb),
                  f"{METHOD} ({na}/{nb} runs, {df:.1f} df)")
    within_sd = math.sqrt((wa * na + wb * nb) / (na + nb))
    return BetweenRuns(spec, ma, mb, tuple(map(float, va)), tuple(map(float, vb)), ci, p, se,
                       df, spread, mde, within_sd)


def _welch_df(var_a: float, na: int, var_b: float, nb: int, spread_df: int) -> float:
    da = na - 1 if na >= 2 else spread_df
    db = nb - 1 if nb >= 2 else spread_df
    if not (da > 0 and db > 0) or not (var_a + var_b > 0):
        return math.nan
    den = var_a ** 2 / da + var_b ** 2 / db
    return (var_a + var_b) ** 2 / den if den > 0 else float(da + db)


def _p(centre: float, se: float, df: float) -> float:
    from scipy.stats import t

    if not (math.isfinite(centre) and math.isfinite(se) and se > 0 and df > 0):
        return math.nan
    return float(2 * t.sf(abs(centre) / se, df))


def runs_needed(mde: float, target: float, n: int) -> int:
    """Repeats per arm for the MDE to shrink to ``target`` (it falls as ``1/√N``)."""
    if not (math.isfinite(mde) and target > 0) or mde <= target:
        return n
    return min(100, math.ceil(n * (mde / target) ** 2))
