"""``servescope bench``'s terminal table: one row per benchmark, implementation and size, in
GB/s (1e9 bytes) with the percentage of each stated peak."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from servescope.records.bandwidth import BandwidthSample

__all__ = ["fmt_bytes", "print_bench"]


def fmt_bytes(n: int) -> str:
    """A size in binary units (``8 B``, ``64 KiB``, ``1.5 GiB``)."""
    v = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if v < 1024 or unit == "TiB":
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
        v /= 1024
    return f"{n} B"


def _gbs(v: float | None) -> str:
    return "–" if v is None or math.isnan(v) else f"{v / 1e9:,.2f}"


def _pct(v: float | None, peak: float | None) -> str:
    if v is None or math.isnan(v) or not peak:
        return "–"
    return f"{100 * v / peak:.1f} %"


def print_bench(console: Console, samples: Sequence[BandwidthSample], *, title: str,
                notes: Sequence[str] = ()) -> None:
    """The table of ``samples``; % of peak uses busbw for collectives, bytes/s otherwise."""
    t = Table(title=escape(title), title_justify="left", header_style="bold")
    for col in ("bench", "impl", "size", "time µs", "spread", "GB/s", "bus GB/s",
                "% NVML peak", "% datasheet"):
        t.add_column(col, justify="left" if col in ("bench", "impl") else "right")
    for s in samples:
        v = s.bus_bytes_per_s if s.bus_bytes_per_s is not None else s.bytes_per_s
        t.add_row(escape(s.bench), escape(s.implementation), fmt_bytes(s.size_bytes),
                  f"{s.time_ns / 1e3:,.1f}", f"{100 * s.time_spread_frac:.0f} %",
                  _gbs(s.bytes_per_s), _gbs(s.bus_bytes_per_s),
                  _pct(v, s.peak_nvml_bytes_per_s), _pct(v, s.peak_datasheet_bytes_per_s))
    console.print(t)
    peaks = sorted({(s.device, s.peak_nvml_bytes_per_s, s.peak_datasheet_bytes_per_s,
                     s.peak_datasheet_source) for s in samples},
                   key=lambda p: (p[0], p[1] or 0.0, p[2] or 0.0, p[3]))
    for dev, nvml, ds, src in peaks:
        console.print(f"peaks of {escape(dev)}: NVML-derived {_gbs(nvml)} GB/s, datasheet "
                      f"{_gbs(ds)} GB/s{' (' + escape(src) + ')' if src else ''}",
                      highlight=False)
    for n in notes:
        console.print(f"[yellow]note:[/] {escape(n)}", highlight=False)
