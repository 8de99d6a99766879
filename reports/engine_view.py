"""Render the engine's side of a run: its signals and its histograms next to the client's."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from servescope.units import NS_PER_MS, fmt_ms

if TYPE_CHECKING:
    from analyzers.side_by_side import EngineView, ServerPercentile

__all__ = ["print_engine_view"]


def _ms(v: float) -> str:
    """``v`` in milliseconds already."""
    return fmt_ms(v * NS_PER_MS, 1)


def _server(p: ServerPercentile | None) -> str:
    if p is None:
        return "–"
    hi = "+Inf" if math.isinf(p.hi_s) else f"{p.hi_s * 1e3:g}"
    return f"{p.value_s * 1e3:,.1f} [{p.lo_s * 1e3:g}–{hi}]"


def _v(v: float | None, fmt: str) -> str:
    return "–" if v is None or math.isnan(v) else format(v, fmt)


def print_engine_view(console: Console, view: EngineView) -> None:
    w = view.window
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    t.add_row("engine", f"{view.engine}: {w.n_snapshots} scrapes every "
              f"{_v(w.sample_interval_s, '.2f')} s"
              + (f", {w.failed_scrapes} failed" if w.failed_scrapes else ""))
    if w.kv_usage_max is not None:
        t.add_row("KV cache", f"max {_v(w.kv_usage_max, '.2%')}, "
                  f"mean {_v(w.kv_usage_mean, '.2%')}")
    if w.running_max is not None:
        t.add_row("batch", f"running max {_v(w.running_max, 'g')} "
                  f"(mean {_v(w.running_mean, '.1f')}), waiting max "
                  f"{_v(w.waiting_max, 'g')} (mean {_v(w.waiting_mean, '.1f')})")
    if w.preemptions is not None:
        t.add_row("preemptions", _v(w.preemptions, "g"))
    if w.prefix_cache_hit_rate is not None and not math.isnan(w.prefix_cache_hit_rate):
        t.add_row("prefix cache", f"hit rate {w.prefix_cache_hit_rate:.1%} "
                  f"({_v(w.prefix_cache_hits, 'g')} of {_v(w.prefix_cache_queries, 'g')} "
                  "looked up)")
    console.print(t)
    table = Table(title="client vs server, ms (server: estimate \\[its histogram bucket])",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("", no_wrap=True)
    for c in ("p50 client", "p50 server", "p99 client", "p99 server", "n"):
        table.add_column(c, justify="right", no_wrap=True)
    for r in view.rows:
        table.add_row(r.metric, _ms(r.client_ms["p50"]), _server(r.server.get("p50")),
                      _ms(r.client_ms["p99"]), _server(r.server.get("p99")),
                      "–" if math.isnan(r.server_count) else f"{r.server_count:g}")
    console.print(table)
    for note in w.notes:
        console.print(Text(f"note: {note}", style="dim"))
