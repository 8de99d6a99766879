"""The HTML report of a bench run (``servescope bench``): bandwidth against size per
benchmark, one line per implementation, with the NVML-derived and datasheet peaks drawn as
dashed lines; the table of every sample; the environment. Renders what
``analyzers.bandwidth.read_bandwidth`` returns; every device and implementation name goes
through :func:`~reports.html.text.esc` / ``plot_text``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reports.html.figspec import Figure, axis_title, base_layout, figure, nums
from reports.html.page import plot_div, render_page
from reports.html.sections import environment, table
from reports.html.text import esc, plot_text

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["bench_figures", "bench_report_html", "is_bench_run"]

_PEAK_STYLE = (("peak_nvml_bytes_per_s", "NVML-derived peak", "#d62728"),
               ("peak_datasheet_bytes_per_s", "datasheet peak", "#7f7f7f"))


def is_bench_run(run_dir: str | Path) -> bool:
    from servescope.rundir.layout import BENCH_BANDWIDTH_FILE

    return (Path(run_dir) / BENCH_BANDWIDTH_FILE).is_file()


def _value_col(g: pd.DataFrame) -> tuple[str, str]:
    if g["bus_bytes_per_s"].notna().all():
        return "bus_bytes_per_s", "busbw (GB/s, nccl-tests)"
    return "bytes_per_s", "bytes moved / time (GB/s)"


def bench_figures(t: pd.DataFrame) -> list[Figure]:
    """One figure per bench: GB/s against size (log axes), peaks as dashed lines."""
    figs: list[Figure] = []
    for i, (bench, g) in enumerate(t.groupby("bench", sort=False)):
        col, ytitle = _value_col(g)
        data: list[dict[str, Any]] = []
        for impl, grp in g.groupby("implementation", sort=False):
            s = grp.sort_values("size_bytes")
            data.append({"type": "scatter", "mode": "lines+markers", "name": plot_text(impl),
                         "x": [int(v) for v in s["size_bytes"]],
                         "y": nums(s[col] / 1e9),
                         "hovertemplate": "%{x:,} B: %{y:,.2f} GB/s<extra>"
                                          f"{plot_text(impl)}</extra>"})
        lo, hi = int(g["size_bytes"].min()), int(g["size_bytes"].max())
        for pcol, label, color in _PEAK_STYLE:
            peaks = g[pcol].dropna()
            if peaks.empty:
                continue
            p = float(peaks.max())
            if not math.isfinite(p):
                continue
            data.append({"type": "scatter", "mode": "lines",
                         "name": f"{label} {p / 1e9:,.0f} GB/s", "x": [lo, hi],
                         "y": nums([p / 1e9, p / 1e9]),
                         "line": {"dash": "dash", "color": color}})
        note = (f"median of each size's timed repeats; {ytitle}; dashed: the stated peaks"
                if data else "")
        layout = base_layout(f"{bench}: bandwidth against size", note, 300)
        layout["xaxis"] = {"type": "log", "title": axis_title("size (bytes)")}
        layout["yaxis"] = {"type": "log", "title": axis_title("GB/s")}
        figs.append(figure(f"bench-{i}", data, layout, note))
    return figs


def _f(v: Any) -> float:
    return math.nan if v is None else float(v)


def _rows(t: pd.DataFrame) -> list[list[str]]:
    out = []
    for r in t.to_dict("records"):
        bus_v, plain = _f(r["bus_bytes_per_s"]), _f(r["bytes_per_s"])
        bus = not math.isnan(bus_v)
        v = bus_v if bus else plain
        pct = []
        for key in ("peak_nvml_bytes_per_s", "peak_datasheet_bytes_per_s"):
            p = _f(r[key])
            pct.append(f"{100 * v / p:.1f} %" if not math.isnan(p) and p else "–")
        out.append([esc(r["bench"]), esc(r["implementation"]), f"{int(r['size_bytes']):,}",
                    f"{_f(r['time_ns']) / 1e3:,.1f}", f"{plain / 1e9:,.3f}",
                    f"{bus_v / 1e9:,.3f}" if bus else "–", *pct, esc(r["transport"])])
    return out


def bench_report_html(run_dir: str | Path) -> str:
    """The page of a bench run (RunDirError when its tables cannot be read)."""
    from analyzers.bandwidth import read_bandwidth
    from servescope.rundir.layout import RunDirError
    from servescope.rundir.manifest import read_manifest

    path = Path(run_dir)
    m = read_manifest(path)
    t = read_bandwidth(path)
    if t is None or t.empty:
        raise RunDirError(f"{path} has no bench/bandwidth.parquet rows: nothing to report")
    figs = bench_figures(t)
    bench = str(m.workload.get("bench", "?"))
    body = (f"<h1>servescope bench report: {esc(bench)}</h1>"
            f'<p class="path">{esc(path)}</p>'
            "<p>Bytes counted as docs/kernels_bench.md states (memory kernels: read + write, "
            "as STREAM; collectives: nccl-tests' size, algbw and busbw). GB = 1e9 bytes.</p>"
            + "".join(plot_div(f) for f in figs)
            + "<h2>Every sample</h2>"
            + table(["bench", "implementation", "size (B)", "time µs", "GB/s", "bus GB/s",
                     "% NVML peak", "% datasheet", "transport"], _rows(t))
            + "<h2>Environment and configuration</h2>" + environment(m))
    return render_page(f"servescope bench: {bench}", body, list(figs))
