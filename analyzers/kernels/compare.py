"""Two traces side by side (A = baseline, B = candidate): per-step mean GPU time by category
and by kernel name, and what got slower (docs/metrics.md, "Kernel comparison").

Per-step mean of X = Σ durations of X's GPU events in the selected steps / number of
selected steps (steps without X count as 0); steps selected by ``phase`` (None: all).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from analyzers.kernels.analysis import prepare_trace
from analyzers.kernels.categories import KernelCategory
from analyzers.kernels.frame import nan_to_none
from analyzers.kernels.timeline import step_timelines

if TYPE_CHECKING:
    import pandas as pd

    from analyzers.kernels.analysis import PreparedTrace

__all__ = ["KernelComparison", "KernelDelta", "compare_kernels"]


@dataclass(frozen=True, slots=True)
class KernelDelta:
    """``a_ns``/``b_ns``: per-step means; ``ratio`` b/a (NaN when a is 0)."""

    name: str
    category: str
    a_ns: float
    b_ns: float
    delta_ns: float
    ratio: float

    def to_json(self) -> dict[str, Any]:
        return nan_to_none(asdict(self))


@dataclass(frozen=True, slots=True)
class KernelComparison:
    phase: str | None
    steps_a: int
    steps_b: int
    span_mean_a_ns: float
    span_mean_b_ns: float
    busy_mean_a_ns: float
    busy_mean_b_ns: float
    categories: list[KernelDelta]  # every category, largest increase first
    slower: list[KernelDelta]  # kernels whose per-step time grew most, largest first
    faster: list[KernelDelta]  # kernels whose per-step time shrank most, largest drop first

    def to_json(self) -> dict[str, Any]:
        head = {k: getattr(self, k) for k in ("phase", "steps_a", "steps_b", "span_mean_a_ns",
                                             "span_mean_b_ns", "busy_mean_a_ns",
                                             "busy_mean_b_ns")}
        return {**head, "categories": [d.to_json() for d in self.categories],
                "slower": [d.to_json() for d in self.slower],
                "faster": [d.to_json() for d in self.faster]}


def _selected(prep: PreparedTrace, phase: str | None) -> tuple[set[int], pd.DataFrame]:
    ids = {s.index for s in prep.steps if phase is None or s.phase.value == phase}
    return ids, prep.gpu[prep.gpu["step"].isin(ids)]


def _per_step(gpu: pd.DataFrame, by: str, n: int) -> dict[tuple[str, str], float]:
    if not n:
        return {}
    sums = gpu.groupby([by, "category"], as_index=False)["dur_ns"].sum()
    return {(str(k), str(c)): float(v) / n
            for k, c, v in zip(sums[by], sums["category"], sums["dur_ns"], strict=True)}


def _delta(name: str, cat: str, a: float, b: float) -> KernelDelta:
    return KernelDelta(name=name, category=cat, a_ns=a, b_ns=b, delta_ns=b - a,
                       ratio=b / a if a else float("nan"))


def _means(prep: PreparedTrace, ids: set[int]) -> tuple[float, float]:
    tl = [t for t in step_timelines(prep.events, prep.steps) if t.index in ids]
    if not tl:
        return float("nan"), float("nan")
    return (float(np.mean([t.span_ns for t in tl])), float(np.mean([t.gpu_busy_ns for t in tl])))


def compare_kernels(a: pd.DataFrame, b: pd.DataFrame, *, engine: str | None = None,
                    phase: str | None = None, top_n: int = 10) -> KernelComparison:
    """A vs B (event frames in the kernel schema); ``phase``: compare only steps of that
    phase ("decode", "prefill", ...)."""
    pa, pb = prepare_trace(a, engine), prepare_trace(b, engine)
    ids_a, ga = _selected(pa, phase)
    ids_b, gb = _selected(pb, phase)
    cat_a = {c: v for (c, _), v in _per_step(ga, "category", len(ids_a)).items()}
    cat_b = {c: v for (c, _), v in _per_step(gb, "category", len(ids_b)).items()}
    cats = sorted((_delta(c.value, c.value, cat_a.get(c.value, 0.0), cat_b.get(c.value, 0.0))
                   for c in KernelCategory), key=lambda d: (-d.delta_ns, d.name))
    ka, kb = _per_step(ga, "name", len(ids_a)), _per_step(gb, "name", len(ids_b))
    kernels = [_delta(n, c, ka.get((n, c), 0.0), kb.get((n, c), 0.0))
               for n, c in sorted(set(ka) | set(kb))]
    slower = sorted((d for d in kernels if d.delta_ns > 0), key=lambda d: (-d.delta_ns, d.name))
    faster = sorted((d for d in kernels if d.delta_ns < 0), key=lambda d: (d.delta_ns, d.name))
    span_a, busy_a = _means(pa, ids_a)
    span_b, busy_b = _means(pb, ids_b)
    return KernelComparison(phase=phase, steps_a=len(ids_a), steps_b=len(ids_b),
                            span_mean_a_ns=span_a, span_mean_b_ns=span_b,
                            busy_mean_a_ns=busy_a, busy_mean_b_ns=busy_b, categories=cats,
                            slower=slower[:top_n], faster=faster[:top_n])
