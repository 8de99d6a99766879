"""Where TTFT and E2E go: queueing, prefill, decode, and what lies outside the engine.

Built from the engine's own latency histograms over a window (their sums and counts, so
**means**, which add up; percentiles do not) next to the client's means for the successful
requests of the same window:

- TTFT = queue + prefill + *engine other* (server TTFT − queue − prefill: tokenization,
  scheduling, detokenization, the API server) + *transport and client* (client TTFT − server
  TTFT: HTTP, the stream's first write, the client's own read).
- E2E = queue + prefill + decode + *engine other* (server E2E − queue − prefill − decode) +
  *transport and client* (client E2E − server E2E).

A part the engine does not expose is left out (``None``) and the remainder absorbs it. The
engine's histogram counts cover every request it finished between the two scrapes that
bound the window, so the decomposition is only as aligned as those scrapes (their times are
in the result); when the server's count differs from the client's by more than 5 % the result
says so. Parts are in nanoseconds; a negative remainder (client mean below the server's,
possible when the two windows do not cover the same requests) is reported as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from servescope.engines.base import Histogram

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Decomposition", "Part", "decompose"]

_NS = 1e9


@dataclass(frozen=True, slots=True)
class Part:
    name: str  # "queue" | "prefill" | "decode" | "engine other" | "transport and client"
    mean_ns: float
    share: float  # of the client mean


@dataclass(frozen=True, slots=True)
class Decomposition:
    latency: str  # "ttft" | "e2e"
    client_mean_ns: float
    client_requests: int
    server_mean_ns: float | None
    server_requests: float | None
    parts: tuple[Part, ...]
    notes: tuple[str, ...]


_Hist = dict[str, tuple[float, float]]  # histogram → (count, mean_s)


def _mean_ns(hist: _Hist, name: Histogram) -> tuple[float | None, float | None]:
    if name.value not in hist:
        return None, None
    count, mean_s = hist[name.value]
    if count <= 0:
        return None, count
    return mean_s * _NS, count


def _one(latency: str, client: np.ndarray, hist: _Hist, total: Histogram,
         stages: tuple[tuple[str, Histogram], ...]) -> Decomposition | None:
    client = client[~np.isnan(client)]
    if client.size == 0:
        return None
    c_mean = float(client.mean())
    server, s_count = _mean_ns(hist, total)
    notes: list[str] = []
    parts: list[tuple[str, float]] = []
    known = 0.0
    for name, h in stages:
        m, _ = _mean_ns(hist, h)
        if m is None:
            notes.append(f"the engine exposes no {name} histogram")
            continue
        parts.append((name, m))
        known += m
    if server is not None:
        parts.append(("engine other", server - known))
        parts.append(("transport and client", c_mean - server))
        if s_count is not None and abs(s_count - client.size) > 0.05 * client.size:
            notes.append(f"the engine counted {s_count:.0f} requests in its histogram window, "
                         f"the client {client.size}: the means cover different requests")
    else:
        notes.append(f"no server {latency.upper()} histogram: the rest is one remainder")
        parts.append(("unattributed", c_mean - known))
    return Decomposition(
        latency=latency, client_mean_ns=c_mean, client_requests=int(client.size),
        server_mean_ns=server, server_requests=s_count,
        parts=tuple(Part(n, m, m / c_mean if c_mean > 0 else math.nan) for n, m in parts),
        notes=tuple(notes))


def decompose(ok_metrics: pd.DataFrame, histograms: pd.DataFrame) -> tuple[Decomposition, ...]:
    """TTFT and E2E decompositions.

    ``ok_metrics``: rows of :func:`analyzers.request_metrics.request_metrics` for the
    successful requests of the window; ``histograms``: :func:`analyzers.server_histograms.
    server_histograms` over the same window. Empty when the engine has no histograms.
    """
    if histograms.empty:
        return ()
    hist: _Hist = {str(h): (float(c), float(m)) for h, c, m in zip(
        histograms["histogram"], histograms["count"], histograms["mean_s"], strict=True)}
    out = [
        _one("ttft", ok_metrics["ttft_ns"].to_numpy(dtype=np.float64), hist, Histogram.TTFT_S,
             (("queue", Histogram.QUEUE_S), ("prefill", Histogram.PREFILL_S))),
        _one("e2e", ok_metrics["e2e_ns"].to_numpy(dtype=np.float64), hist, Histogram.E2E_S,
             (("queue", Histogram.QUEUE_S), ("prefill", Histogram.PREFILL_S),
              ("decode", Histogram.DECODE_S))),
    ]
    return tuple(d for d in out if d is not None)
