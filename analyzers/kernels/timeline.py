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


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def step_timelines(events: pd.DataFrame, steps: list[Step]) -> list[StepTimeline]:
    """The figures of every step; ``events`` as :func:`analyzers.kernels.steps.assign_steps`
    returns them."""
    import pandas as pd

    kind = events["kind"].to_numpy()
    in_step = events["step"].to_numpy(np.int64) >= 0
    gpu = events[np.isin(kind, GPU_KINDS) & in_step]
    rt = events[(kind == TraceEventKind.RUNTIME.value) & in_step]
    cpu = events[(kind == TraceEventKind.CPU_OP.value) & in_step]
    unions = union_by_step_device(gpu)
    busiest = (unions.sort_values(["step", "busy_ns"], ascending=[True, False], kind="stable")
               .drop_duplicates("step").set_index("step"))
    n_dev = unions.groupby("step")["device"].nunique()
    gpu_by_step = dict(tuple(gpu.groupby("step")))
    rt_by_step = dict(tuple(rt.groupby("step")))
    cpu_count = cpu.groupby("step").size()
    out = []
    for s in steps:
        g = gpu_by_step.get(s.index)
        r = rt_by_step.get(s.index)
        dev = busiest.loc[s.index] if s.index in busiest.index else None
        out.append(_one(s, g, r, dev if isinstance(dev, pd.Series) else None,
                        devices=int(n_dev.get(s.index, 0)),
                        cpu_ops=int(cpu_count.get(s.index, 0))))
    return out


def _one(s: Step, g: pd.DataFrame | None, r: pd.DataFrame | None, dev: pd.Series | None,
         *, devices: int, cpu_ops: int) -> StepTimeline:
    a0, a1 = s.t_start_ns, s.t_start_ns + s.dur_ns
    if g is None or dev is None or not len(g):
        span = a1 - a0
        busy = before = between = after = 0
        durs = np.zeros(0, dtype=np.int64)
        kernels = graph_kernels = 0
        delays = np.zeros(0, dtype=np.float64)
    else:
        start = g["t_start_ns"].to_numpy(np.int64)
        end = start + g["dur_ns"].to_numpy(np.int64)
        t0, t1 = min(a0, int(start.min())), max(a1, int(end.max()))
        span = t1 - t0
        busy = int(dev["busy_ns"])
        before = int(dev["first_ns"]) - t0
        after = t1 - int(dev["last_ns"])
        between = int(dev["last_ns"]) - int(dev["first_ns"]) - busy
        durs = g["dur_ns"].to_numpy(np.int64)
        kernels = int((g["kind"].to_numpy() == TraceEventKind.KERNEL.value).sum())
        names = g["launch_name"].to_numpy()
        graph_kernels = int(sum(bool(GRAPH_LAUNCH.search(str(n))) for n in names if n))
        launched = g[g["launch_start_ns"].to_numpy(np.int64) >= 0]
        first = launched.groupby("correlation_id").agg(s=("t_start_ns", "min"),
                                                        ls=("launch_start_ns", "first"))
        delays = (first["s"] - first["ls"]).to_numpy(np.float64)
    rt_names = r["name"].to_numpy() if r is not None else np.zeros(0, dtype=object)
    runtime_ns = int(r["dur_ns"].sum()) if r is not None else 0
    kernel_time = int(durs.sum())
    idle = span - busy
    idle_frac = idle / span if span > 0 else float("nan")
    median = _percentile(durs.astype(np.float64), 50)
    bound = bool(len(durs) and idle_frac > LAUNCH_BOUND_IDLE_FRAC
                 and len(durs) >= LAUNCH_BOUND_MIN_KERNELS
                 and median < LAUNCH_BOUND_SHORT_KERNEL_NS)
    return StepTimeline(
        index=s.index, rank=s.rank, name=s.name, phase=s.phase.value, source=s.source.value,
        wall_ns=s.dur_ns, span_ns=span, gpu_busy_ns=busy, gpu_idle_ns=idle,
        idle_frac=idle_frac, idle_before_first_ns=before, idle_between_ns=between,
        idle_after_last_ns=after, gpu_events=len(durs), kernels=kernels,
        kernel_time_ns=kernel_time, kernel_median_ns=median, runtime_calls=len(rt_names),
        runtime_ns=runtime_ns,
        launch_overhead_ratio=runtime_ns / kernel_time if kernel_time else float("nan"),
        queue_delay_mean_ns=float(delays.mean()) if len(delays) else float("nan"),
        queue_delay_p50_ns=_percentile(delays, 50),
        queue_delay_max_ns=float(delays.max()) if len(delays) else float("nan"),
        graph_launches=int(sum(bool(GRAPH_LAUNCH.search(str(n))) for n in rt_names)),
        graph_kernels=graph_kernels, cpu_ops=cpu_ops, devices=devices, launch_bound=bound)
