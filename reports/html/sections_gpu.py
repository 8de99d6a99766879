"""HTML sections below the HTTP layer: the GPU figures of the steady-state window
(:func:`gpu_figures_table`, beside the latency table; :func:`gpu_ab_table` for two runs) and
the engine's CPU stacks (:func:`stacks_section`).

Renders :class:`~analyzers.gpu.figures.GpuFigures` and
:class:`~analyzers.stacks_summary.StacksSummary`; every string the engine or the run
provided (function names, file paths, thread names, process titles, file names, errors)
goes through :func:`~reports.html.sections.safe` or :func:`~reports.html.text.esc`.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from analyzers.gpu.figures import GpuFigures, GpuWindowFigures
from analyzers.stacks_summary import StacksSummary, ThreadSummary
from reports.html.sections import safe, table
from reports.html.text import esc, fmt_num, fmt_pct, short

__all__ = ["GPU_ROWS", "gpu_ab_table", "gpu_figures_table", "stacks_section"]

SPEEDSCOPE_APP = "https://www.speedscope.app/"
THREADS_PER_ROLE = 3


def _num(v: float, digits: int = 1, unit: str = "") -> str:
    if not math.isfinite(v):
        return "–"
    return f"{v:,.{digits}f}" + (f" <span class='unit'>{unit}</span>" if unit else "")


def _throttle(g: GpuWindowFigures) -> str:
    caps = [t for t in g.throttle if t.bit != 0x1 and t.time_frac > 0]
    text = fmt_pct(g.throttled_frac)
    if caps:
        text += " <span class='unit'>(" + ", ".join(
            f"{esc(t.reason)} {fmt_pct(t.time_frac, 0)}" for t in caps) + ")</span>"
    return text


# (label, how a GpuWindowFigures prints it); "–": the run did not record what it needs
GPU_ROWS: tuple[tuple[str, Callable[[GpuWindowFigures], str]], ...] = (
    ("SM busy (GPM)", lambda g: fmt_pct(g.sm_busy_frac)),
    ("SM occupancy (GPM)", lambda g: fmt_pct(g.sm_occupancy_frac)),
    ("DRAM bandwidth", lambda g: _num(g.dram_bw_bytes_per_s / 1e9, 0, "GB/s")),
    ("DRAM % of peak", lambda g: fmt_pct(g.dram_bw_peak_frac)
     + (f" <span class='unit'>of {_num(g.peak_dram_bytes_per_s / 1e9, 0)} GB/s</span>"
        if math.isfinite(g.peak_dram_bytes_per_s) else "")),
    ("tensor active (GPM)", lambda g: fmt_pct(g.tensor_active_frac)),
    ("NVML util (any kernel running)", lambda g: fmt_pct(g.nvml_util_frac)),
    ("power, mean", lambda g: _num(g.power_mean_w, 0, "W")),
    ("energy", lambda g: _num(g.energy_j, 0, "J")),
    ("energy per output token", lambda g: _num(g.energy_per_output_token_j, 3, "J")),
    ("energy per request", lambda g: _num(g.energy_per_request_j, 1, "J")),
    ("SM clock, median", lambda g: _num(g.sm_clock_median_mhz, 0, "MHz")
     + (f" <span class='unit'>{fmt_pct(g.sm_clock_max_frac, 0)} of max</span>"
        if math.isfinite(g.sm_clock_max_frac) else "")),
    ("throttled (power/thermal cap)", _throttle),
    ("memory used, max", lambda g: _num(g.mem_used_max_bytes / 2**30, 1, "GiB")
     + (f" <span class='unit'>{fmt_pct(g.mem_used_max_frac, 0)}</span>"
        if math.isfinite(g.mem_used_max_frac) else "")),
    ("NVML samples", lambda g: f"{g.samples:,}" + (
        f" <span class='unit'>every {g.sample_period_median_s * 1e3:.3g} ms</span>"
        if math.isfinite(g.sample_period_median_s) else "")),
)


def _columns(f: GpuFigures) -> list[GpuWindowFigures]:
    return [*f.gpus, f.combined] if len(f.gpus) > 1 else list(f.gpus or (f.combined,))


def _col_name(g: GpuWindowFigures) -> str:
    if g.gpu_index is None:
        return "all GPUs"
    return f"GPU {g.gpu_index}" + (f" <span class='unit'>{esc(g.name)}</span>" if g.name else "")


def gpu_figures_table(f: GpuFigures | None) -> str:
    """The GPU figures over the window of the latency table (one column per GPU, and all
    GPUs together when there are several); "" without GPU data."""
    if f is None:
        return ""
    cols = _columns(f)
    rows = [[esc(label), *(show(g) for g in cols)] for label, show in GPU_ROWS]
    span = (f.end_ns - f.start_ns) / 1e9
    head = (f"<h3>GPU in the same window</h3><p class='meta'>{esc(f.window_note)}, "
            f"{span:.2f} s; GPM: {'yes' if f.gpm_supported else 'not recorded'}. "
            "Energy from the energy counter; per token and per request: the successful "
            "requests ending in the window.</p>")
    return head + table(["", *(_col_name(g) for g in cols)], rows, "num gpu-figures")


def gpu_ab_table(a: GpuFigures | None, b: GpuFigures | None) -> str:
    """Both runs' GPU figures (all GPUs together) side by side with the change; "" when
    neither run has GPU data."""
    if a is None and b is None:
        return ""
    rows = []
    for label, show in GPU_ROWS:
        rows.append([esc(label), show(a.combined) if a else "–", show(b.combined) if b else "–",
                     esc(_change(label, a, b))])
    notes = "; ".join(f"{tag}: {esc(f.window_note)}" for tag, f in (("A", a), ("B", b))
                      if f is not None)
    return ("<h2>GPU, A → B</h2><p class='meta'>All GPUs of each run together over its own "
            f"window ({notes}). The change is B against A, without an interval: one window "
            "per run.</p>" + table(["", "A", "B", "change"], rows, "num gpu-ab"))


_CHANGE_FIELD = {"SM busy (GPM)": "sm_busy_frac", "SM occupancy (GPM)": "sm_occupancy_frac",
                 "DRAM bandwidth": "dram_bw_bytes_per_s", "DRAM % of peak": "dram_bw_peak_frac",
                 "tensor active (GPM)": "tensor_active_frac",
                 "NVML util (any kernel running)": "nvml_util_frac",
                 "power, mean": "power_mean_w", "energy": "energy_j",
                 "energy per output token": "energy_per_output_token_j",
                 "energy per request": "energy_per_request_j",
                 "SM clock, median": "sm_clock_median_mhz",
                 "throttled (power/thermal cap)": "throttled_frac",
                 "memory used, max": "mem_used_max_bytes"}


def _change(label: str, a: GpuFigures | None, b: GpuFigures | None) -> str:
    name = _CHANGE_FIELD.get(label)
    if name is None or a is None or b is None:
        return ""
    x, y = float(getattr(a.combined, name)), float(getattr(b.combined, name))
    if not (math.isfinite(x) and math.isfinite(y)):
        return "–"
    if name.endswith("_frac"):
        return f"{(y - x) * 100:+.1f} points"
    return f"{(y / x - 1) * 100:+.1f} %" if x else "–"


# ------------------------------------------------------------------------------ stacks


def _link(run_dir: str, rel_file: str, links_from: str | None) -> str | None:
    """A relative URL to ``rel_file`` of the run, from the directory the page is saved in
    (None: the run directory); None for a name that is not a plain path inside the run."""
    p = PurePosixPath(rel_file)
    if not rel_file or p.is_absolute() or ".." in p.parts or "\\" in rel_file:
        return None
    if links_from is None:
        target = str(p)
    else:
        target = posixpath.relpath((Path(run_dir) / p).resolve().as_posix(),
                                   Path(links_from).resolve().as_posix())
    return quote(target)  # ':' too: never a scheme such as javascript:


def _thread_table(t: ThreadSummary) -> str:
    rows = [[f"<code>{safe(short(h.function, 160))}</code>",
             f"<code>{safe(short(h.file, 160))}:{h.line}</code>", fmt_pct(h.self_frac),
             fmt_pct(h.total_frac)] for h in t.top]
    head = (f"<p><b>{safe(t.thread_name) or 'thread'}</b> <span class='unit'>tid {t.tid}, "
            f"pid {t.pid}: active {fmt_pct(t.active_frac)} of the ticks, {t.samples:,} "
            "samples</span></p>")
    if not rows:
        return head + "<p class='meta'>no hot functions recorded</p>"
    return head + table(["function", "file:line", "self", "total"], rows, "num hot")


def _processes(s: StacksSummary, run_dir: str, links_from: str | None) -> str:
    rows = []
    for p in s.processes:
        url = _link(run_dir, p.speedscope_file, links_from)
        link = (f'<a href="{esc(url)}">{esc(p.speedscope_file)}</a>' if url else "–")
        rows.append([esc(p.role), str(p.pid), f"<code>{safe(short(p.title, 200))}</code>",
                     f"{p.samples:,}", link, safe(p.error) if p.error else ""])
    return ("<h3>Processes sampled</h3><p class='meta'>Each profile opens in "
            f'<a href="{SPEEDSCOPE_APP}">speedscope.app</a> (drop the file on the page) or '
            "<code>speedscope FILE</code>.</p>"
            + table(["role", "pid", "title", "samples", "speedscope profile", "error"], rows))


def _hangs(s: StacksSummary, run_dir: str, origin_ns: int, links_from: str | None) -> str:
    if not s.hangs:
        return ""
    items = []
    for h in s.hangs:
        links = []
        for f in h.files:
            url = _link(run_dir, f, links_from)
            links.append(f'<a href="{esc(url)}">{esc(f)}</a>' if url else esc(f))
        errs = "".join(f"<li class='msg'>{safe(e)}</li>" for e in h.errors)
        items.append(f"<li>at {fmt_num((h.t_ns - origin_ns) / 1e9)} s: no token for "
                     f"{h.stalled_s:.1f} s with {h.in_flight} requests in flight; dumps: "
                     f"{', '.join(links) or 'none'}" + (f"<ul>{errs}</ul>" if errs else "")
                     + "</li>")
    return ("<h3>Hang dumps</h3><p class='meta'><code>py-spy dump --native</code> of every "
            "engine process, taken when no token arrived for <code>--hang-after</code> "
            f"seconds while requests were in flight.</p><ul>{''.join(items)}</ul>")


def stacks_section(s: StacksSummary | None, run_dir: str, origin_ns: int,
                   links_from: str | None = None) -> str:
    """The engine's CPU stacks: per role its busiest threads with their hottest functions,
    the processes with links to their speedscope files, the hang dumps; "" without stacks.
    ``links_from``: the directory the page is saved in (None: the run directory)."""
    if s is None:
        return ""
    out = ["<h2>Engine CPU stacks</h2>"]
    if s.model_thread is not None:
        m = s.model_thread
        out.append(f"<p>The thread that runs the model: <b>{safe(m.thread_name)}</b> "
                   f"({esc(m.role)}, pid {m.pid}, active {fmt_pct(m.active_frac)}); "
                   f"{esc(s.model_thread_why)}.</p>")
    for role in s.roles:
        busiest = role.busiest
        out.append(f"<h3>{esc(role.role)} <span class='unit'>pid "
                   f"{esc(', '.join(map(str, role.pids)))}"
                   f"{'; runs the model' if role.runs_model else ''}</span></h3>")
        if busiest is None:
            out.append("<p class='meta'>no thread sampled</p>")
            continue
        out.append(f"<p>Busiest thread: <b>{safe(busiest.thread_name)}</b> "
                   f"({fmt_pct(busiest.active_frac)} active).</p>")
        out += [_thread_table(t) for t in role.threads[:THREADS_PER_ROLE]]
        if len(role.threads) > THREADS_PER_ROLE:
            out.append(f"<p class='meta'>{len(role.threads) - THREADS_PER_ROLE} quieter "
                       "threads in the speedscope profile.</p>")
    out.append(_processes(s, run_dir, links_from))
    out.append(_hangs(s, run_dir, origin_ns, links_from))
    return "".join(out)
