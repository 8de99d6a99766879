"""Per-metric evidence for a comparison: the two values, the change with its interval, and a
p-value, computed the way each metric :class:`~analyzers.metric_catalog.Kind` requires.

``analyzers.compare`` turns these into verdicts; docs/analysis.md states every rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from analyzers.bootstrap import Interval, mean_ratio_ci, relative_change_cis
from analyzers.metric_catalog import Kind, MetricSpec
from analyzers.run_samples import RunSamples
from analyzers.significance import proportion_test, rank_test, welch_test

__all__ = ["Evidence", "available", "evidence"]

_NO_NOISE = "one value per run: no noise estimate"


@dataclass(frozen=True, slots=True)
class Evidence:
    """``change`` is relative (``b / a − 1``) when ``spec.relative``, else a difference.
    ``test_key`` names the test behind ``p_value``; metrics sharing a key share one test (the
    three TTFT percentiles share one rank test) and count once in the multiplicity
    correction."""

    spec: MetricSpec
    baseline: float
    candidate: float
    change: Interval
    test: str
    test_key: str
    p_value: float
    note: str = ""


def _nan_interval(confidence: float, n: int, why: str) -> Interval:
    return Interval(math.nan, math.nan, math.nan, confidence, n, why)


def _rel(a: float, b: float) -> float:
    return b / a - 1.0 if a and math.isfinite(a) and math.isfinite(b) else math.nan


def _percentiles(specs: list[MetricSpec], a: RunSamples, b: RunSamples, *, confidence: float,
                 n_resamples: int, seed: int) -> list[Evidence]:
    src = specs[0].source
    qs = [s.percentile or 0.0 for s in specs]
    if src == "itl_per_token_ns":
        cis = relative_change_cis(a.itl_ns, b.itl_ns, qs, confidence=confidence,
                                  n_resamples=n_resamples, seed=seed,
                                  clusters_a=a.itl_request, clusters_b=b.itl_request)
        p = rank_test(a.latency_ns["itl_mean_ns"], b.latency_ns["itl_mean_ns"])
        test = "Mann–Whitney U on per-request mean ITL"
    else:
        va, vb = a.latency_ns[src], b.latency_ns[src]
        cis = relative_change_cis(va, vb, qs, confidence=confidence, n_resamples=n_resamples,
                                  seed=seed)
        p = rank_test(va, vb)
        test = f"Mann–Whitney U on per-request {src.removesuffix('_ns').upper()}"
    out = []
    for spec, q in zip(specs, qs, strict=True):
        attr = f"p{q:g}"
        sa = getattr(a.summary.latency, src)
        sb = getattr(b.summary.latency, src)
        out.append(Evidence(spec, float(getattr(sa, attr)), float(getattr(sb, attr)), cis[q],
                            test, f"rank:{src}", p))
    return out


def _rate(spec: MetricSpec, a: RunSamples, b: RunSamples, *, confidence: float,
          seed: int) -> Evidence:
    va = _summary_rate(a, spec)
    vb = _summary_rate(b, spec)
    sa, sb = a.slice_rates.get(spec.name), b.slice_rates.get(spec.name)
    if sa is None or sb is None:
        return Evidence(spec, va, vb, _nan_interval(confidence, 0, "no measurement window"),
                        "", "", math.nan)
    ci = mean_ratio_ci(sa, sb, confidence=confidence, seed=seed)
    ci = replace(ci, estimate=_rel(va, vb))
    return Evidence(spec, va, vb, ci, f"Welch t-test on {sa.size}/{sb.size} slice rates",
                    f"welch:{spec.name}", welch_test(sa, sb))


def _summary_rate(r: RunSamples, spec: MetricSpec) -> float:
    if spec.source == "good_requests_per_s":
        return r.summary.goodput.good_requests_per_s if r.summary.goodput else math.nan
    return float(getattr(r.summary, spec.source))


def _counts(r: RunSamples, spec: MetricSpec) -> tuple[int, int]:
    n = r.summary.measured_requests
    if spec.name == "error_rate":
        return n - r.summary.successful_requests, n
    return r.good, n


def _proportion(spec: MetricSpec, a: RunSamples, b: RunSamples, *,
                confidence: float) -> Evidence:
    ka, na = _counts(a, spec)
    kb, nb = _counts(b, spec)
    ci, p = proportion_test(ka, na, kb, nb, confidence=confidence)
    va = ka / na if na else math.nan
    vb = kb / nb if nb else math.nan
    return Evidence(spec, va, vb, ci, f"Fisher exact test ({ka}/{na} vs {kb}/{nb})",
                    f"fisher:{spec.name}", p)


def _bucket_sample(cumulative: tuple[float, ...]) -> npt.NDArray[np.int64]:
    """One value per observation: the index of its bucket (a rank test only needs order)."""
    diff = np.diff(np.asarray(cumulative, dtype=np.float64), prepend=0.0)
    counts: npt.NDArray[np.int64] = np.maximum(np.rint(diff), 0).astype(np.int64)
    return np.repeat(np.arange(counts.size, dtype=np.int64), counts)


def _server(specs: list[MetricSpec], a: RunSamples, b: RunSamples, *,
            confidence: float) -> list[Evidence]:
    ha, hb = a.server[specs[0].source], b.server[specs[0].source]
    same = ha.bounds_s == hb.bounds_s
    p = rank_test(_bucket_sample(ha.cumulative), _bucket_sample(hb.cumulative)) if same \
        else math.nan
    test = (f"Mann–Whitney U on bucket indices ({ha.count:.0f}/{hb.count:.0f} observations)"
            if same else "")
    note = "" if same else "the two runs' histograms have different buckets: not tested"
    out = []
    for spec in specs:
        q = (spec.percentile or 0.0) / 100.0
        pa, pb = ha.quantile(q), hb.quantile(q)
        va, vb = pa.value_s * 1e9, pb.value_s * 1e9
        with np.errstate(divide="ignore", invalid="ignore"):
            low = pb.lo_s / pa.hi_s - 1.0 if pa.hi_s > 0 else math.nan
            high = pb.hi_s / pa.lo_s - 1.0 if pa.lo_s > 0 else math.inf
        ci = Interval(_rel(va, vb), low, high, confidence, int(min(ha.count, hb.count)),
                      "bucket bounds: the changes the two buckets allow")
        out.append(Evidence(spec, va, vb, ci, test, f"rank:{spec.source}", p, note))
    return out


def _engine(spec: MetricSpec, a: RunSamples, b: RunSamples, confidence: float) -> Evidence:
    va = getattr(a.engine, spec.source) if a.engine else None
    vb = getattr(b.engine, spec.source) if b.engine else None
    fa = float(va) if va is not None else math.nan
    fb = float(vb) if vb is not None else math.nan
    ci = Interval(fb - fa, math.nan, math.nan, confidence, 1, _NO_NOISE)
    return Evidence(spec, fa, fb, ci, "", "", math.nan)


def _bandwidth(spec: MetricSpec, a: RunSamples, b: RunSamples, *, confidence: float,
               n_resamples: int, seed: int) -> Evidence:
    va, vb = a.bandwidth[spec.name], b.bandwidth[spec.name]
    ci = relative_change_cis(va, vb, [50.0], confidence=confidence, n_resamples=n_resamples,
                             seed=seed)[50.0]
    return Evidence(spec, float(np.median(va)), float(np.median(vb)), ci,
                    f"Mann–Whitney U on {va.size}/{vb.size} per-repeat bandwidths",
                    f"rank:{spec.name}", rank_test(va, vb))


def available(spec: MetricSpec, a: RunSamples, b: RunSamples) -> bool:
    """Whether both runs have what ``spec`` needs (engine metrics, histograms, an SLO,
    bandwidth samples; a bench run has no request metrics)."""
    if spec.kind is Kind.BANDWIDTH:
        return spec.name in a.bandwidth and spec.name in b.bandwidth
    if a.bench_only or b.bench_only:
        return False
    if spec.kind is Kind.SERVER_PERCENTILE:
        return spec.source in a.server and spec.source in b.server and all(
            r.server[spec.source].count > 0 for r in (a, b))
    if spec.kind is Kind.ENGINE:
        return (a.engine is not None and b.engine is not None
                and getattr(a.engine, spec.source) is not None
                and getattr(b.engine, spec.source) is not None)
    if spec.needs_slo:
        return a.summary.goodput is not None and b.summary.goodput is not None
    return True


def evidence(specs: Iterable[MetricSpec], a: RunSamples, b: RunSamples, *, confidence: float,
             n_resamples: int, seed: int) -> list[Evidence]:
    """Evidence for each spec (callers filter with :func:`available` first), in order."""
    specs = list(specs)
    groups: dict[tuple[Kind, str], list[MetricSpec]] = {}
    for s in specs:
        if s.kind in (Kind.PERCENTILE, Kind.SERVER_PERCENTILE):
            groups.setdefault((s.kind, s.source), []).append(s)
    done: dict[str, Evidence] = {}
    for (kind, _), group in groups.items():
        found = (_percentiles(group, a, b, confidence=confidence, n_resamples=n_resamples,
                              seed=seed) if kind is Kind.PERCENTILE
                 else _server(group, a, b, confidence=confidence))
        done.update((e.spec.name, e) for e in found)
    out = []
    for s in specs:
        if s.name in done:
            out.append(done[s.name])
        elif s.kind is Kind.RATE:
            out.append(_rate(s, a, b, confidence=confidence, seed=seed))
        elif s.kind is Kind.PROPORTION:
            out.append(_proportion(s, a, b, confidence=confidence))
        elif s.kind is Kind.BANDWIDTH:
            out.append(_bandwidth(s, a, b, confidence=confidence, n_resamples=n_resamples,
                                  seed=seed))
        else:
            out.append(_engine(s, a, b, confidence))
    return out
