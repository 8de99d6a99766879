"""Summary statistics of one metric's samples: :class:`Stats` and :func:`describe`.

Percentiles use numpy's ``"linear"`` method (Hyndman & Fan type 7, numpy's default and the
one ``vllm bench serve`` gets from ``np.percentile``): the p-th percentile of ``n`` sorted
values is interpolated at rank ``(n - 1) * p / 100``. ``stdev`` is the population standard
deviation (``ddof=0``, as ``np.std``). NaN samples mean "not defined for this request" and
are dropped before anything is computed; an empty input gives ``count == 0`` and NaN
everywhere else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["PERCENTILES", "Stats", "describe"]

PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0, 99.9)


@dataclass(frozen=True, slots=True)
class Stats:
    """Count, moments and percentiles of one metric, in the metric's own unit."""

    count: int
    mean: float
    stdev: float
    min: float
    max: float
    p50: float
    p90: float
    p95: float
    p99: float
    p999: float

    @classmethod
    def empty(cls) -> Stats:
        nan = math.nan
        return cls(0, nan, nan, nan, nan, nan, nan, nan, nan, nan)

    def scaled(self, factor: float) -> Stats:
        """The same statistics in another unit (``factor=1e-6`` turns ns into ms)."""
        if not factor > 0:
            raise ValueError(f"a unit factor must be positive, not {factor}")
        return Stats(self.count, self.mean * factor, self.stdev * factor,
                     *(v * factor for v in (self.min, self.max, self.p50, self.p90,
                                            self.p95, self.p99, self.p999)))

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def describe(values: npt.ArrayLike | Sequence[float]) -> Stats:
    """Statistics of the non-NaN samples in ``values`` (any shape; flattened)."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return Stats.empty()
    p50, p90, p95, p99, p999 = (float(v) for v in
                                np.percentile(arr, PERCENTILES, method="linear"))
    return Stats(
        count=int(arr.size),
        mean=float(arr.mean()),
        stdev=float(arr.std(ddof=0)),
        min=float(arr.min()),
        max=float(arr.max()),
        p50=p50, p90=p90, p95=p95, p99=p99, p999=p999,
    )
