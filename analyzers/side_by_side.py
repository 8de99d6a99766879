"""Client and server views of the same run, side by side.

The client's percentiles come from its raw timeline (exact); the server's from the engine's
own histograms over the same window (bucketed: each server percentile is known only to lie
between two bucket bounds, which are returned with it). Where each side starts and stops its
clock differs per engine; ``docs/metrics.md`` explains it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analyzers.engine_signals import EngineWindow
from servescope.engines.base import Histogram

if TYPE_CHECKING:
    from analyzers.context import RunSource
    from analyzers.stats import Stats
    from analyzers.summary import RunSummary

__all__ = ["EngineView", "ServerPercentile", "SideBySideRow", "engine_view"]


@dataclass(frozen=True, slots=True)
class ServerPercentile:
    value_s: float  # Prometheus-style interpolation inside the bucket
    lo_s: float  # the bucket the percentile falls in
    hi_s: float


@dataclass(frozen=True, slots=True)
class SideBySideRow:
    metric: str
    client_ms: dict[str, float]  # p50/p90/p99, NaN when the client has no such metric
    server: dict[str, ServerPercentile]  # p50/p90/p99, empty when the engine has none
    server_count: float
    note: str


@dataclass(frozen=True, slots=True)
class EngineView:
    engine: str
    window: EngineWindow
    rows: tuple[SideBySideRow, ...]


_PAIRS: tuple[tuple[str, Histogram, str | None], ...] = (
    ("TTFT", Histogram.TTFT_S, "ttft_ns"),
    ("ITL", Histogram.ITL_S, "itl_per_token_ns"),
    ("TPOT", Histogram.TPOT_S, "tpot_ns"),
    ("E2E", Histogram.E2E_S, "e2e_ns"),
    ("queue", Histogram.QUEUE_S, None),
    ("prefill", Histogram.PREFILL_S, None),
    ("decode", Histogram.DECODE_S, None),
)


def _client(summary: RunSummary, attr: str | None) -> dict[str, float]:
    st: Stats | None = getattr(summary.latency, attr) if attr else None
    if st is None or st.count == 0:
        return {"p50": math.nan, "p90": math.nan, "p99": math.nan}
    return {"p50": st.p50 / 1e6, "p90": st.p90 / 1e6, "p99": st.p99 / 1e6}


def engine_view(run: RunSource, summary: RunSummary) -> EngineView | None:
    """None when the run has no engine metrics. The server window starts at the client's
    measured window and ends with the run's last scrape (taken after the load ended):
    the context's ``engine_load``."""
    from analyzers.context import RunContext
    from analyzers.server_histograms import histogram_rows

    ctx = RunContext.of(run)
    load, spec = ctx.engine_load, ctx.spec
    if load is None or spec is None:  # no engine, or an endpoint that never answered
        return None
    hist = histogram_rows(load.histograms, spec)
    by_name = {str(h): row for h, row in hist.set_index("histogram").iterrows()} \
        if len(hist) else {}
    rows = []
    for label, h, attr in _PAIRS:
        row = by_name.get(str(h))
        server: dict[str, ServerPercentile] = {}
        count = math.nan
        note = ""
        if row is not None and row["count"] > 0:
            count = float(row["count"])
            note = str(row.get("note", "") or "")
            for p in ("p50", "p90", "p99"):
                server[p] = ServerPercentile(float(row[f"{p}_s"]), float(row[f"{p}_lo_s"]),
                                             float(row[f"{p}_hi_s"]))
        client = _client(summary, attr)
        if server or not all(math.isnan(v) for v in client.values()):
            rows.append(SideBySideRow(label, client, server, count, note))
    engine = ctx.manifest.engine.name if ctx.manifest.engine is not None else "?"
    return EngineView(engine, load.window, tuple(rows))
