"""Per-step GPU timeline figures and the launch-bound verdict (docs/metrics.md, "Kernel
timelines").

A step's **span** runs from the earlier of its annotation's start and its first GPU event to
the later of its annotation's end and its last GPU event (kernels launched in a step often
finish after the CPU left it). **GPU busy** is the union of the step's GPU event intervals on
one device (overlapping kernels on two streams count once); a step on several devices reports
the busiest. **Idle** = span − busy, split into before the first GPU event, between GPU events
(gaps in the union) and after the last (the GPU waiting on the host to end the step).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from analyzers.kernels.frame import GPU_KINDS, nan_to_none
from servescope.records.kernels import TraceEventKind

if TYPE_CHECKING:
    import pandas as pd

    from analyzers.kernels.steps import Step

__all__ = ["GRAPH_LAUNCH", "LAUNCH_BOUND_IDLE_FRAC", "LAUNCH_BOUND_MIN_KERNELS",
           "LAUNCH_BOUND_SHORT_KERNEL_NS", "StepTimeline", "step_timelines"]

# "GPU idle most of the step": more than half of the step's span without a GPU event.
LAUNCH_BOUND_IDLE_FRAC = 0.5
# "many kernels": a decode step of a transformer launches hundreds eagerly; 20 rules out a
# step that is idle because it ran a handful of long kernels and waited on something else.
LAUNCH_BOUND_MIN_KERNELS = 20
# "short": the median GPU event is shorter than the ~20 µs the host needs per eager op
# (python dispatch + cudaLaunchKernel), so the host cannot stay ahead of the GPU.
LAUNCH_BOUND_SHORT_KERNEL_NS = 20_000
GRAPH_LAUNCH = re.compile(r"graphlaunch", re.IGNORECASE)  # cudaGraphLaunch, cuGraphLaunch...


@dataclass(frozen=True, slots=True)
class StepTimeline:
    """One step's GPU figures. ``kernel_time_ns``: Σ GPU event durations (not the union);
    ``runtime_ns``: Σ runtime-call durations in the step; ``launch_overhead_ratio`` their
    ratio (NaN without kernel time); queue delays: GPU start of a launch's first event − the
    runtime call's start (NaN without launches seen)."""

    index: int
    rank: int
    name: str
    phase: str
    source: str
    wall_ns: int
    span_ns: int
    gpu_busy_ns: int
    gpu_idle_ns: int
    idle_frac: float
    idle_before_first_ns: int
    idle_between_ns: int
    idle_after_last_ns: int
    gpu_events: int
    kernels: int
    kernel_time_ns: int
    kernel_median_ns: float
    runtime_calls: int
    runtime_ns: int
    launch_overhead_ratio: float
    queue_delay_mean_ns: float
    queue_delay_p50_ns: float
    queue_delay_max_ns: float
    graph_launches: int
    graph_kernels: int
    cpu_ops: int
    devices: int
    launch_bound: bool

    def to_json(self) -> dict[str, Any]:
        return nan_to_none(asdict(self))


def union_by_step_device(gpu: pd.DataFrame) -> pd.DataFrame:
    """Per (step, device): busy_ns (union of intervals), first_ns, last_ns (first start, last
    end). ``gpu``: GPU events with ``step`` >= 0."""
    import pandas as pd

    g = gpu.sort_values(["step", "device", "t_start_ns"], kind="stable")
    start = g["t_start_ns"].to_numpy(np.int64)
    end = start + g["dur_ns"].to_numpy(np.int64)
    key_step, key_dev = g["step"].to_numpy(np.int64), g["device"].to_numpy(np.int64)
    new_group = np.ones(len(g), dtype=bool)
    new_group[1:] = (key_step[1:] != key_step[:-1]) | (key_dev[1:] != key_dev[:-1])
    group = np.cumsum(new_group) - 1
    run_end = pd.Series(end).groupby(group).cummax().to_numpy(np.int64)
    prev = np.empty(len(g), dtype=np.int64)
    if len(g):
        prev[0] = 0
        prev[1:] = run_end[:-1]
    block = np.cumsum(new_group | (start > prev)) - 1
    blocks = pd.DataFrame({"group": group, "block": block, "s": start, "e": end}).groupby(
        "block").agg(group=("group", "first"), s=("s", "min"), e=("e", "max"))
    per = blocks.assign(busy=blocks["e"] - blocks["s"]).groupby("group").agg(
        busy_ns=("busy", "sum"), first_ns=("s", "min"), last_ns=("e", "max"))
    heads = np.flatnonzero(new_group)
    per["step"] = key_step[heads]
    per["device"] = key_dev[heads]
    return per.reset_index(drop=True)


def _graph_mask(names: pd.Series) -> np.ndarray:
    graphs = [n for n in names.unique() if GRAPH_LAUNCH.search(str(n))]
    return names.isin(graphs).to_numpy(dtype=bool)


def _per_step(frame: pd.DataFrame, index: np.ndarray, **aggs: tuple[str, str]) -> pd.DataFrame:
    """``frame`` grouped by step, aggregated, one row per ``index`` (NaN where absent)."""
    if not len(frame):
        import pandas as pd

        return pd.DataFrame(np.nan, index=index, columns=list(aggs))
    out = frame.groupby("step").agg(**aggs)
    # integer results stay exact where a step is missing (a float64 NaN column would round
    # monotonic-clock ns past 2**53, about 104 days of uptime)
    return out.astype({c: "Int64" for c in out.columns if out[c].dtype.kind in "iu"}
                      ).reindex(index)


def step_timelines(events: pd.DataFrame, steps: list[Step]) -> list[StepTimeline]:
    """The figures of every step; ``events`` as :func:`analyzers.kernels.steps.assign_steps`
    returns them."""
    kind = events["kind"].to_numpy()
    in_step = events["step"].to_numpy(np.int64) >= 0
    gpu = events[np.isin(kind, GPU_KINDS) & in_step]
    gpu = gpu.assign(end=gpu["t_start_ns"] + gpu["dur_ns"],
                     is_kernel=gpu["kind"].to_numpy() == TraceEventKind.KERNEL.value,
                     graph=_graph_mask(gpu["launch_name"]))
    rt = events[(kind == TraceEventKind.RUNTIME.value) & in_step]
    rt = rt.assign(graph=_graph_mask(rt["name"]))
    cpu = events[(kind == TraceEventKind.CPU_OP.value) & in_step]
    idx = np.array([s.index for s in steps], dtype=np.int64)
    g = _per_step(gpu, idx, n=("dur_ns", "size"), dur=("dur_ns", "sum"),
                  med=("dur_ns", "median"), first=("t_start_ns", "min"), last=("end", "max"),
                  kernels=("is_kernel", "sum"), graph=("graph", "sum"))
    r = _per_step(rt, idx, n=("dur_ns", "size"), dur=("dur_ns", "sum"), graph=("graph", "sum"))
    c = _per_step(cpu, idx, n=("dur_ns", "size"))
    launched = gpu[gpu["launch_start_ns"].to_numpy(np.int64) >= 0]
    first = launched.groupby(["step", "correlation_id"], as_index=False).agg(
        s=("t_start_ns", "min"), ls=("launch_start_ns", "first"))
    q = _per_step(first.assign(d=(first["s"] - first["ls"]).astype(np.float64)), idx,
                  mean=("d", "mean"), p50=("d", "median"), max=("d", "max"))
    unions = union_by_step_device(gpu)
    busiest = (unions.sort_values(["step", "busy_ns"], ascending=[True, False], kind="stable")
               .drop_duplicates("step").set_index("step"))
    busiest = busiest.astype({c: "Int64" for c in busiest.columns
                              if busiest[c].dtype.kind in "iu"}).reindex(idx)
    n_dev = unions.groupby("step")["device"].nunique().reindex(idx)
    cols = {name: frame[col].to_numpy(np.float64, na_value=np.nan) for name, frame, col in (
        ("g_n", g, "n"), ("g_med", g, "med"), ("g_kernels", g, "kernels"),
        ("g_graph", g, "graph"), ("r_n", r, "n"), ("r_graph", r, "graph"), ("c_n", c, "n"),
        ("q_mean", q, "mean"), ("q_p50", q, "p50"), ("q_max", q, "max"))}
    cols["devices"] = n_dev.to_numpy(np.float64, na_value=np.nan)
    # times and ns sums as exact integers (0 where the step has none: read only when it has)
    exact = {name: frame[col].astype("Int64").to_numpy(np.int64, na_value=0)
             for name, frame, col in (
                 ("g_dur", g, "dur"), ("g_first", g, "first"), ("g_last", g, "last"),
                 ("r_dur", r, "dur"), ("d_busy", busiest, "busy_ns"),
                 ("d_first", busiest, "first_ns"), ("d_last", busiest, "last_ns"))}
    return _timelines(steps, cols, exact)


def _timelines(steps: list[Step], v: dict[str, np.ndarray], x: dict[str, np.ndarray]
               ) -> list[StepTimeline]:
    """Every step's figures at once (numpy over steps), then one record per step. ``v``:
    float columns, NaN where a step has none; ``x``: exact int64 columns, 0 where none."""
    a0 = np.array([s.t_start_ns for s in steps], dtype=np.int64)
    a1 = a0 + np.array([s.dur_ns for s in steps], dtype=np.int64)
    n = np.nan_to_num(v["g_n"], nan=0.0).astype(np.int64)
    has = n > 0
    t0 = np.where(has, np.minimum(a0, x["g_first"]), a0)
    t1 = np.where(has, np.maximum(a1, x["g_last"]), a1)
    zero = np.zeros(len(steps), dtype=np.int64)
    busy = np.where(has, x["d_busy"], zero)
    before = np.where(has, x["d_first"] - t0, zero)
    after = np.where(has, t1 - x["d_last"], zero)
    between = np.where(has, x["d_last"] - x["d_first"] - busy, zero)
    span = t1 - t0
    idle = span - busy
    kernel_time, runtime_ns = x["g_dur"], x["r_dur"]  # 0 where none, as _n gave
    counts = {k: np.nan_to_num(v[k], nan=0.0).astype(np.int64).tolist()
              for k in ("g_kernels", "r_n", "r_graph", "g_graph", "c_n", "devices")}
    spans, idles, kt, rt = span.tolist(), idle.tolist(), kernel_time.tolist(), runtime_ns.tolist()
    medians = v["g_med"].tolist()
    out = []
    cols = zip(steps, n.tolist(), spans, busy.tolist(), idles, before.tolist(),
               between.tolist(), after.tolist(), kt, rt, medians, counts["g_kernels"],
               counts["r_n"], counts["r_graph"], counts["g_graph"], counts["c_n"],
               counts["devices"], v["q_mean"].tolist(), v["q_p50"].tolist(),
               v["q_max"].tolist(), strict=True)
    for (s, k, sp, bu, idl, bf, bt, af, ktime, rtime, med, kern, rn, rg, gg, cn, dev, qm, qp,
         qx) in cols:
        idle_frac = idl / sp if sp > 0 else math.nan
        median = med if k else math.nan
        out.append(StepTimeline(
            s.index, s.rank, s.name, s.phase.value, s.source.value, s.dur_ns, sp, bu, idl,
            idle_frac, bf, bt, af, k, kern, ktime, median, rn, rtime,
            rtime / ktime if ktime else math.nan, qm, qp, qx, rg, gg, cn, dev,
            bool(k and idle_frac > LAUNCH_BOUND_IDLE_FRAC and k >= LAUNCH_BOUND_MIN_KERNELS
                 and median < LAUNCH_BOUND_SHORT_KERNEL_NS)))
    return out
