"""Render analyzer results as rich tables in a terminal (or plain text in a log): what the
command computed (the summary, the engine view, the definition tables) is passed in."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from analyzers.definitions import Definition
    from analyzers.side_by_side import EngineView
    from analyzers.stats import Stats
    from analyzers.summary import RunSummary
    from servescope.rundir.reader import RunData

__all__ = ["latency_rows", "print_definition_tables", "print_summary"]

_MS = 1e-6


def _fmt(v: float, digits: int = 2) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.{digits}f}"


def latency_rows(s: RunSummary) -> list[tuple[str, Stats | None]]:
    lat = s.latency
    return [
        ("TTFT", lat.ttft_ns),
        ("ITL/token", lat.itl_per_token_ns),
        ("ITL/event", lat.itl_per_event_ns),
        ("TPOT", lat.tpot_ns),
        ("E2E", lat.e2e_ns),
        ("E2E→DONE", lat.e2e_done_ns),
        ("sched lag", lat.schedule_lag_ns),
        ("TTFT*", lat.ttft_from_intended_ns),
        ("E2E*", lat.e2e_from_intended_ns),
    ]


def _latency_table(s: RunSummary, title: str) -> Table:
    t = Table(title=title, title_justify="left", caption_justify="left")
    t.add_column("ms", no_wrap=True)
    for c in ("p50", "p90", "p99", "p99.9", "mean", "max", "n"):
        t.add_column(c, justify="right", no_wrap=True)
    for name, st in latency_rows(s):
        if st is None:
            continue
        ms = st.scaled(_MS) if st.count else st
        t.add_row(name, *(_fmt(v) for v in (ms.p50, ms.p90, ms.p99, ms.p999, ms.mean, ms.max)),
                  str(st.count))
    if s.open_loop:
        t.caption = "* measured from the intended send time (coordinated omission)"
    return t


def _headline(s: RunSummary) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    window_s = s.window_ns / 1e9 if s.window_ns > 0 else float("nan")
    t.add_row("requests", f"{s.measured_requests} measured, {s.successful_requests} ok, "
              f"{s.warmup_excluded} warm-up excluded, error rate {s.error_rate:.2%}")
    t.add_row("window", f"{_fmt(window_s)} s")
    t.add_row("throughput", f"{_fmt(s.request_throughput_per_s)} req/s, "
              f"{_fmt(s.output_token_throughput_per_s, 1)} output tok/s, "
              f"{_fmt(s.input_token_throughput_per_s, 1)} input tok/s")
    bad = {k: v for k, v in s.outcomes.items() if v and k != "success"}
    if bad:
        t.add_row("failures", ", ".join(f"{k} {v}" for k, v in sorted(bad.items())))
    if s.goodput is not None:
        g = s.goodput
        slo = ", ".join(f"{k.removesuffix('_ms')} ≤ {v:g} ms" for k, v in g.slo.given().items())
        t.add_row("goodput", f"{_fmt(g.good_requests_per_s)} req/s "
                  f"({g.good_fraction:.1%} of requests meet {slo}), "
                  f"{_fmt(g.good_output_tokens_per_s, 1)} good output tok/s")
    src = ", ".join(f"{k} {v}" for k, v in sorted(s.output_tokens_sources.items()) if v)
    if src:
        t.add_row("token counts", src)
    return t


def print_summary(console: Console, run: RunData, s: RunSummary,
                  engine: EngineView | None = None) -> None:
    """The run's summary ``s``, and the engine's view beside the client's when given
    (:func:`analyzers.side_by_side.engine_view`)."""
    m = run.manifest
    target = m.target
    console.print(Text(f"{run.path}  ·  {target.get('model', '?')} @ {target.get('url', '?')}"
                       f"  ·  {m.status}", style="bold"))
    console.print(_headline(s))
    console.print(_latency_table(s, "latency (successful, measured requests)"))
    for step in s.steps:
        console.print(_headline(step))
        console.print(_latency_table(step, f"step {step.step}"))
    if engine is not None:
        from reports.engine_view import print_engine_view

        print_engine_view(console, engine)
    # the manifest's warnings (written while recording or importing), then the analysis'
    for w in dict.fromkeys((*run.manifest.warnings, *s.warnings)):
        console.print(Text(f"warning: {w}", style="yellow"))


def print_definition_tables(console: Console,
                            tables: Iterable[tuple[Definition, Mapping[str, Stats]]]) -> None:
    """The run's numbers under other tools' definitions
    (:func:`analyzers.definitions.definition_tables`), each definition spelled out."""
    for d, table in tables:
        t = Table(title=f"under {d.tool}'s definitions", title_justify="left")
        t.add_column("ms", no_wrap=True)
        for c in ("p50", "p90", "p99", "mean", "n"):
            t.add_column(c, justify="right", no_wrap=True)
        for metric, st in table.items():
            ms = st.scaled(_MS) if st.count else st
            t.add_row(metric.removesuffix("_ns"), _fmt(ms.p50), _fmt(ms.p90), _fmt(ms.p99),
                      _fmt(ms.mean), str(st.count))
        console.print(t)
        for metric, text in d.metrics.items():
            console.print(Text(f"  {metric.removesuffix('_ns')}: {text}", style="dim"))


