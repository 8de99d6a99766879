"""Kernel time by category and by kernel name (docs/metrics.md, "Kernel categories").

Percentiles are numpy's linear interpolation (pandas' ``quantile`` default) over the GPU
events' durations; shares are of Σ GPU event durations (not the union), so they add to 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from analyzers.kernels.categories import KernelCategory, categorize
from analyzers.kernels.frame import GPU_KINDS, nan_to_none
from servescope.records.kernels import TraceEventKind

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CategoryStats", "KernelStats", "categorized_gpu_events", "category_stats",
           "phase_category_shares", "top_kernels"]


@dataclass(frozen=True, slots=True)
class CategoryStats:
    category: str
    count: int
    total_ns: int
    mean_ns: float
    p50_ns: float
    p90_ns: float
    p99_ns: float
    share_frac: float  # of all GPU event time

    def to_json(self) -> dict[str, Any]:
        return nan_to_none(asdict(self))


@dataclass(frozen=True, slots=True)
class KernelStats:
    name: str
    category: str
    count: int
    total_ns: int
    mean_ns: float
    share_frac: float

    def to_json(self) -> dict[str, Any]:
        return nan_to_none(asdict(self))


def categorized_gpu_events(events: pd.DataFrame) -> pd.DataFrame:
    """The GPU events (kernel, memcpy, memset) of ``events`` with a ``category`` column."""
    gpu = events[events["kind"].isin(GPU_KINDS)]
    by_name = {n: categorize(n, TraceEventKind.KERNEL.value).value for n in gpu["name"].unique()}
    cats = gpu["name"].map(by_name).to_numpy(dtype=object)
    copies = gpu["kind"].to_numpy() != TraceEventKind.KERNEL.value
    cats[copies] = KernelCategory.MEMCPY_MEMSET.value
    import pandas as pd

    return gpu.assign(category=pd.Series(cats, index=gpu.index, dtype=object))


def category_stats(gpu: pd.DataFrame) -> list[CategoryStats]:
    """One row per category (every category, zeros when absent), ``gpu`` categorized."""
    total = int(gpu["dur_ns"].sum())
    out = []
    for cat in KernelCategory:
        d = gpu["dur_ns"].to_numpy(np.int64)[gpu["category"].to_numpy() == cat.value]
        f = d.astype(np.float64)
        pct = np.percentile(f, [50, 90, 99]) if len(d) else [float("nan")] * 3
        out.append(CategoryStats(
            category=cat.value, count=len(d), total_ns=int(d.sum()),
            mean_ns=float(f.mean()) if len(d) else float("nan"),
            p50_ns=float(pct[0]), p90_ns=float(pct[1]), p99_ns=float(pct[2]),
            share_frac=int(d.sum()) / total if total else 0.0))
    return out


def phase_category_shares(gpu: pd.DataFrame, step_phase: dict[int, str]
                          ) -> dict[str, dict[str, float]]:
    """Per step phase, the share of its GPU event time in each category (events in steps)."""
    phase = gpu["step"].map(step_phase)
    sums = gpu.assign(phase=phase).dropna(subset=["phase"]).groupby(
        ["phase", "category"])["dur_ns"].sum()
    out: dict[str, dict[str, float]] = {}
    for ph in sorted({str(p) for p, _ in sums.index}):
        row = sums.loc[ph]
        tot = float(row.sum())
        out[ph] = {c.value: (float(row.get(c.value, 0)) / tot if tot else 0.0)
                   for c in KernelCategory}
    return out


def top_kernels(gpu: pd.DataFrame, n: int = 10) -> list[KernelStats]:
    """The ``n`` names with the most total time (ties by name)."""
    total = int(gpu["dur_ns"].sum())
    agg = gpu.groupby(["name", "category"], sort=False)["dur_ns"].agg(["count", "sum"])
    agg = agg.reset_index().sort_values(["sum", "name"], ascending=[False, True]).head(n)
    return [KernelStats(name=str(nm), category=str(c), count=int(k), total_ns=int(s),
                        mean_ns=s / k, share_frac=s / total if total else 0.0)
            for nm, c, k, s in zip(agg["name"], agg["category"], agg["count"], agg["sum"],
                                   strict=True)]
