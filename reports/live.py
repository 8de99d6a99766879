"""Live progress while a run goes on: a rich live panel on a terminal, plain log lines in CI."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from profiler.loadrun import Progress

__all__ = ["LiveView"]


def _p(values_ns: list[int], q: float) -> float:
    if not values_ns:
        return float("nan")
    s = sorted(values_ns)
    return s[min(len(s) - 1, int(q * len(s)))] / 1e6


class LiveView:
    """Call :meth:`update` with each :class:`Progress`; use as a context manager."""

    def __init__(self, console: Console, label: str, log_every_s: float = 5.0) -> None:
        self.console = console
        self.label = label
        self.log_every_s = log_every_s
        self._live: Live | None = None
        self._last_log = 0.0
        self._t0 = time.monotonic()

    def __enter__(self) -> LiveView:
        if self.console.is_terminal:
            self._live = Live(console=self.console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def _line(self, p: Progress) -> str:
        planned = f"/{p.planned}" if p.planned else ""
        step = f" step {p.step + 1}/{p.steps}" if p.steps > 1 else ""
        el = time.monotonic() - self._t0
        return (f"{self.label}{step}: {p.done}{planned} done, {p.in_flight} in flight, "
                f"{p.errors} errors, {p.done / el if el > 0 else 0:.1f} req/s, "
                f"TTFT p50 {_p(p.recent_ttft_ns, 0.5):.1f} ms p99 "
                f"{_p(p.recent_ttft_ns, 0.99):.1f} ms (recent)")

    def update(self, p: Progress) -> None:
        if self._live is not None:
            t = Table.grid(padding=(0, 2))
            t.add_row(Text(self._line(p)))
            self._live.update(t)
            return
        now = time.monotonic()
        if now - self._last_log >= self.log_every_s:
            self._last_log = now
            self.console.print(self._line(p), highlight=False, markup=False)
