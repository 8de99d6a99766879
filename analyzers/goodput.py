"""Goodput: the requests that succeeded and met every given service-level objective.

A measured request is *good* when its outcome is ``success`` and, for each SLO given:

- ``ttft_ms``: ``ttft_ns`` <= SLO (a request with no output event has no TTFT: not met);
- ``itl_ms``: every per-token ITL sample of the request <= SLO, i.e. its largest one
  (a request with no sample, such as a one-token answer, meets it);
- ``tpot_ms``: ``tpot_ns`` <= SLO; a request with ``output_tokens <= 1`` has no TPOT and
  meets it (the ``vllm bench serve`` convention: TPOT counted as 0);
- ``e2e_ms``: ``e2e_ns`` <= SLO (no output event: not met).

Latencies are measured from the actual send, as the peers do; SLOs are given in
milliseconds (user input) and compared against nanoseconds without rounding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from analyzers.timeline import BoolArray

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SLO", "Goodput", "good_mask", "goodput", "parse_slo"]

_NS_PER_MS = 1_000_000


@dataclass(frozen=True, slots=True)
class SLO:
    """Service-level objectives in milliseconds; ``None`` leaves a metric unconstrained."""

    ttft_ms: float | None = None
    itl_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"SLO {f.name} must be a positive number of ms, not {v!r}")

    def given(self) -> dict[str, float]:
        """The constrained metrics: ``{"ttft_ms": 200.0, ...}``."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}


@dataclass(frozen=True, slots=True)
class Goodput:
    """Goodput of a set of measured requests over a window.

    ``good_fraction`` is good / measured requests (failures count as not good);
    ``met`` counts, per given SLO, the successful requests that meet that one SLO.
    """

    slo: SLO
    measured_requests: int
    good_requests: int
    good_fraction: float
    good_requests_per_s: float
    good_output_tokens_per_s: float
    met: Mapping[str, int]


def _met(metrics: pd.DataFrame, name: str, limit_ms: float) -> BoolArray:
    limit_ns = limit_ms * _NS_PER_MS
    if name == "ttft_ms":
        return np.asarray(metrics["ttft_ns"].to_numpy() <= limit_ns, dtype=np.bool_)
    if name == "e2e_ms":
        return np.asarray(metrics["e2e_ns"].to_numpy() <= limit_ns, dtype=np.bool_)
    if name == "tpot_ms":
        tpot = metrics["tpot_ns"].to_numpy()
        one = metrics["output_tokens"].to_numpy() <= 1
        return np.asarray(one | (tpot <= limit_ns), dtype=np.bool_)
    if name == "itl_ms":
        worst = metrics["itl_token_max_ns"].to_numpy()
        return np.asarray(np.isnan(worst) | (worst <= limit_ns), dtype=np.bool_)
    raise ValueError(f"unknown SLO metric {name!r}")


def good_mask(metrics: pd.DataFrame, slo: SLO) -> BoolArray:
    """Per row of :func:`analyzers.request_metrics.request_metrics`: is the request good."""
    good = np.asarray(metrics["outcome"].to_numpy() == "success", dtype=np.bool_)
    for name, limit in slo.given().items():
        good &= _met(metrics, name, limit)
    return good


def goodput(metrics: pd.DataFrame, window_ns: int, slo: SLO) -> Goodput:
    """Goodput of the rows of ``metrics`` (already restricted to measured requests)."""
    good = good_mask(metrics, slo)
    success = np.asarray(metrics["outcome"].to_numpy() == "success", dtype=np.bool_)
    n = len(metrics)
    n_good = int(good.sum())
    window_s = window_ns / 1e9 if window_ns > 0 else math.nan
    good_tokens = int(metrics["output_tokens"].to_numpy()[good].sum())
    return Goodput(
        slo=slo,
        measured_requests=n,
        good_requests=n_good,
        good_fraction=n_good / n if n else math.nan,
        good_requests_per_s=n_good / window_s,
        good_output_tokens_per_s=good_tokens / window_s,
        met={name: int((success & _met(metrics, name, limit)).sum())
             for name, limit in slo.given().items()},
    )


def parse_slo(text: str) -> SLO:
    """``ttft:200,itl:50,tpot:40,e2e:2000`` (milliseconds) → :class:`SLO`."""
    keys = {"ttft": "ttft_ms", "itl": "itl_ms", "tpot": "tpot_ms", "e2e": "e2e_ms"}
    values: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, num = part.partition(":")
        key = keys.get(name.strip().lower())
        if not sep or key is None:
            raise ValueError(f"SLO {part!r}: expected NAME:MS with NAME one of "
                             f"{', '.join(keys)} (e.g. ttft:200,tpot:40)")
        try:
            values[key] = float(num)
        except ValueError:
            raise ValueError(f"SLO {part!r}: {num!r} is not a number of milliseconds") from None
    if not values:
        raise ValueError("--slo is empty; e.g. --slo ttft:200,tpot:40")
    return SLO(**values)
