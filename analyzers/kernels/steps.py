"""Engine steps cut from a trace, and every event assigned to one (docs/analysis.md,
"Kernel timelines").

Steps, per rank, from the first source that has any (CPU-side annotations only: kineto's
GPU-side copy of a range, ``device`` >= 0 or ``cat`` gpu_user_annotation, would count every
step twice): (1) the engine's own step annotations
(the regular expressions of its spec's ``profiler.step_annotations``, looked up by engine
name; all engines' when none is named), (2) torch's ``ProfilerStep#N`` annotations,
(3) launch-gap clustering of the GPU events: a new step starts where the GPU stays idle at
least :data:`GAP_SPLIT_MIN_NS` and :data:`GAP_SPLIT_MEDIAN_FACTOR` times the rank's median
gap between consecutive GPU events.

Assignment: a GPU event (kernel, memcpy, memset) belongs to the step whose annotation
contains the start of the runtime call that launched it (same rank and correlation id; the
GPU runs behind the CPU, so a kernel often starts after its step's annotation ended); without
such a call, to the step whose interval contains the event's start. Runtime calls, CPU ops and
annotations belong to the step containing their start; a runtime call outside every step
takes the step of a GPU event it launched. For launch-gap clusters (GPU spans, into which
the CPU launches ahead) GPU events go by their start and runtime calls by the GPU event they
launched. Unassigned events get step -1.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from analyzers.kernels.frame import GPU_KINDS
from servescope.engines.registry import ENGINES, get_spec
from servescope.records.kernels import TraceEventKind

if TYPE_CHECKING:
    import pandas as pd

    from servescope.engines.observability import StepAnnotation

__all__ = ["GAP_SPLIT_MEDIAN_FACTOR", "GAP_SPLIT_MIN_NS", "PROFILER_STEP", "Step",
           "StepPhase", "StepSource", "assign_steps", "cut_steps", "parse_step_name",
           "step_annotations"]

# A decode step's kernels are µs apart even when launch-bound; the host's scheduling between
# steps takes hundreds of µs to ms. 200 µs and 20x the median gap separate the two on the
# traces we know; a trace whose steps touch (async scheduling) yields one long step.
GAP_SPLIT_MIN_NS = 200_000
GAP_SPLIT_MEDIAN_FACTOR = 20.0
# torch's own step marker (profiler.step()); not an engine's, so it lives here
PROFILER_STEP = re.compile(r"ProfilerStep#(?P<n>\d+)")


class StepSource(StrEnum):
    ANNOTATION = "annotation"
    PROFILER_STEP = "profiler_step"
    LAUNCH_GAP = "launch_gap"


class StepPhase(StrEnum):
    PREFILL = "prefill"
    DECODE = "decode"
    MIXED = "mixed"
    EMPTY = "empty"  # the engine annotated a step with nothing scheduled
    OTHER = "other"  # an engine mode that is none of the above (SGLang VERIFY, DRAFT, IDLE)
    UNKNOWN = "unknown"  # no engine annotation (ProfilerStep#N, launch-gap clusters)


@dataclass(frozen=True, slots=True)
class Step:
    """One engine step of one rank; ``t_start_ns``/``dur_ns`` are the annotation's (CPU side)
    or, for a launch-gap cluster, its GPU events' span. Counts are None where the annotation
    does not carry them."""

    index: int  # position in the trace's steps (ranks in order, then time)
    rank: int
    name: str
    source: StepSource
    phase: StepPhase
    t_start_ns: int
    dur_ns: int
    batch_reqs: int | None = None
    tokens: int | None = None
    prefill_reqs: int | None = None
    prefill_tokens: int | None = None
    decode_reqs: int | None = None
    decode_tokens: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def step_annotations(engine: str | None) -> tuple[StepAnnotation, ...]:
    """The step-annotation patterns of ``engine`` (its spec's profiler), or of every engine
    when None; an unknown name raises the registry's one-line error."""
    specs = [get_spec(engine)] if engine else list(ENGINES)
    out: dict[str, StepAnnotation] = {}
    for spec in specs:
        if spec.profiler is not None:
            for ann in spec.profiler.step_annotations:
                out.setdefault(ann.pattern, ann)
    return tuple(out.values())


def _int(groups: dict[str, str], key: str) -> int | None:
    v = groups.get(key)
    return int(v) if v is not None and v.isdigit() else None


def _detail_sq(detail: str | None) -> int | None:
    """Σ query lengths from a detailed vLLM phase (``sq512sk512sqsq…``): the tokens."""
    m = re.match(r"sq(\d+)", detail or "")
    return int(m.group(1)) if m else None


_MODE_PHASES = {"EXTEND": StepPhase.PREFILL, "PREFILL": StepPhase.PREFILL,
                "DECODE": StepPhase.DECODE, "MIXED": StepPhase.MIXED,
                "IDLE": StepPhase.EMPTY}


def _from_groups(g: dict[str, str]) -> dict[str, Any]:
    """Phase and counts from an annotation's named groups (the group names of the engine
    specs: vLLM's context_*/generation_*, SGLang's and TRT-LLM's mode/bs/toks)."""
    if "mode" in g:
        phase = _MODE_PHASES.get(g["mode"], StepPhase.OTHER)
        bs, toks = _int(g, "bs"), _int(g, "toks")
        if phase is StepPhase.DECODE and toks is None:
            toks = bs  # one new token per request
        return {"phase": phase, "batch_reqs": bs, "tokens": toks,
                "prefill_reqs": bs if phase is StepPhase.PREFILL else None,
                "prefill_tokens": toks if phase is StepPhase.PREFILL else None,
                "decode_reqs": bs if phase is StepPhase.DECODE else None,
                "decode_tokens": toks if phase is StepPhase.DECODE else None}
    ctx, gen = _int(g, "context_reqs"), _int(g, "generation_reqs")
    ctx_tok = _int(g, "context_tokens")
    gen_tok = _int(g, "generation_tokens")
    if ctx_tok is None:
        ctx_tok = _detail_sq(g.get("context_detail"))
    if gen_tok is None:
        gen_tok = _detail_sq(g.get("generation_detail"))
    c, n = ctx or 0, gen or 0
    phase = (StepPhase.MIXED if c and n else StepPhase.PREFILL if c
             else StepPhase.DECODE if n else StepPhase.EMPTY)
    tokens = _int(g, "scheduled_tokens")
    if tokens is None and ctx_tok is not None and gen_tok is not None:
        tokens = ctx_tok + gen_tok
    return {"phase": phase, "batch_reqs": c + n, "tokens": tokens, "prefill_reqs": ctx,
            "prefill_tokens": ctx_tok, "decode_reqs": gen, "decode_tokens": gen_tok}


def parse_step_name(name: str, annotations: tuple[StepAnnotation, ...]) -> dict[str, Any] | None:
    """Phase and counts of a step annotation's name; None when no pattern matches."""
    for ann in annotations:
        groups = ann.match(name)
        if groups is not None:
            return _from_groups(groups)
    return None


def _rank_steps(rank: int, ev: pd.DataFrame,
                annotations: tuple[StepAnnotation, ...]) -> list[dict[str, Any]]:
    """Step fields of one rank (without index), in time order."""
    ann = ev[(ev["kind"].to_numpy() == TraceEventKind.ANNOTATION.value)
             & (ev["device"].to_numpy(np.int64) < 0)]
    if "cat" in ann.columns:  # kineto's GPU-side copy of a range (the ingestion's cat column)
        ann = ann[ann["cat"].to_numpy() != "gpu_user_annotation"]
    names = ann["name"].to_numpy()
    parsed = {n: p for n in set(names) if (p := parse_step_name(n, annotations)) is not None}
    rows = ann[ann["name"].isin(list(parsed)).to_numpy(dtype=bool)].sort_values(
        "t_start_ns", kind="stable")
    if len(rows):
        return [{"rank": rank, "name": n, "source": StepSource.ANNOTATION,
                 "t_start_ns": int(t0), "dur_ns": int(d), **parsed[n]}
                for n, t0, d in zip(rows["name"], rows["t_start_ns"], rows["dur_ns"],
                                    strict=True)]
    is_prof = [PROFILER_STEP.fullmatch(n) is not None for n in names]
    prof = ann[np.array(is_prof, dtype=bool)]
    if len(prof):
        return [{"rank": rank, "name": r.name, "source": StepSource.PROFILER_STEP,
                 "phase": StepPhase.UNKNOWN, "t_start_ns": int(r.t_start_ns),
                 "dur_ns": int(r.dur_ns)}
                for r in prof.sort_values("t_start_ns", kind="stable").itertuples()]
    return _gap_steps(rank, ev)


def gap_clusters(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Cluster id of each GPU event (``start`` sorted): a new cluster where the gap since
    the latest end so far reaches the split rule."""
    if len(start) == 0:
        return np.zeros(0, dtype=np.int64)
    run_end = np.maximum.accumulate(end)
    gaps = np.maximum(start[1:] - run_end[:-1], 0)
    median = float(np.median(gaps)) if len(gaps) else 0.0
    limit = max(GAP_SPLIT_MIN_NS, GAP_SPLIT_MEDIAN_FACTOR * median)
    return np.concatenate([[0], np.cumsum(gaps >= limit)]).astype(np.int64)


def _gap_steps(rank: int, ev: pd.DataFrame) -> list[dict[str, Any]]:
    import pandas as pd

    gpu = ev[ev["kind"].isin(GPU_KINDS)].sort_values("t_start_ns", kind="stable")
    start = gpu["t_start_ns"].to_numpy(np.int64)
    end = start + gpu["dur_ns"].to_numpy(np.int64)
    ids = gap_clusters(start, end)
    if not len(ids):
        return []
    bounds = pd.DataFrame({"c": ids, "s": start, "e": end}).groupby("c").agg(
        s=("s", "min"), e=("e", "max"))
    return [{"rank": rank, "name": f"gap_cluster_{c}", "source": StepSource.LAUNCH_GAP,
             "phase": StepPhase.UNKNOWN, "t_start_ns": int(s), "dur_ns": int(e - s)}
            for c, s, e in zip(bounds.index, bounds["s"], bounds["e"], strict=True)]


def cut_steps(events: pd.DataFrame, engine: str | None = None) -> list[Step]:
    """The steps of a checked event frame (:func:`analyzers.kernels.frame.check_events`)."""
    annotations = step_annotations(engine)
    steps: list[Step] = []
    ranks = sorted(int(r) for r in events["rank"].unique())
    for rank in ranks:
        ev = events if len(ranks) == 1 else events[events["rank"].to_numpy() == rank]
        for fields_ in _rank_steps(rank, ev, annotations):
            steps.append(Step(index=len(steps), **fields_))
    return steps


def _locate(t: np.ndarray, starts: np.ndarray, ends: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The id of the interval containing each time (start <= t < end, or t == start for an
    empty interval); -1 where none. Intervals sorted by start, not overlapping."""
    if len(starts) == 0:
        return np.full(len(t), -1, dtype=np.int64)
    pos = np.searchsorted(starts, t, side="right") - 1
    safe = np.clip(pos, 0, None)
    inside = (pos >= 0) & ((t < ends[safe]) | (t == starts[safe]))
    return np.where(inside, ids[safe], -1)


def assign_steps(events: pd.DataFrame, steps: list[Step]) -> pd.DataFrame:
    """``events`` with ``step`` set to the index of the step each belongs to (the rule in the
    module docstring) and ``launch_start_ns``/``launch_name`` of each GPU event's runtime call
    (-1 / "" without one)."""
    import pandas as pd

    out = events
    kind = out["kind"].to_numpy()
    rank = out["rank"].to_numpy(np.int64)
    t = out["t_start_ns"].to_numpy(np.int64)
    is_gpu = np.isin(kind, GPU_KINDS)
    is_rt = kind == TraceEventKind.RUNTIME.value
    corr = out["correlation_id"].to_numpy(np.int64)
    rt = out[is_rt & (corr >= 0)].drop_duplicates(["rank", "correlation_id"])
    launched = np.flatnonzero(is_gpu & (corr >= 0))
    joined = pd.DataFrame({"rank": rank[launched], "correlation_id": corr[launched]}).merge(
        rt[["rank", "correlation_id", "t_start_ns", "name"]], how="left",
        on=["rank", "correlation_id"])
    launch_start = np.full(len(out), -1, dtype=np.int64)
    launch_name = np.full(len(out), "", dtype=object)
    found = joined["t_start_ns"].notna().to_numpy()
    launch_start[launched[found]] = joined["t_start_ns"].to_numpy()[found].astype(np.int64)
    launch_name[launched[found]] = joined["name"].to_numpy()[found]
    step = np.full(len(out), -1, dtype=np.int64)
    gap_ranks = {s.rank for s in steps if s.source is StepSource.LAUNCH_GAP}
    follow = np.zeros(len(out), dtype=bool)  # runtime calls that take their GPU event's step
    for r in np.unique(rank):
        mine = [s for s in steps if s.rank == r]
        starts = np.array([s.t_start_ns for s in mine], dtype=np.int64)
        ends = starts + np.array([s.dur_ns for s in mine], dtype=np.int64)
        ids = np.array([s.index for s in mine], dtype=np.int64)
        sel = rank == r
        own = _locate(t, starts, ends, ids)
        if int(r) in gap_ranks:
            # a cluster is a GPU span, and the CPU launches ahead into the previous one:
            # GPU events by their start, runtime calls by the GPU event they launched
            step = np.where(sel, own, step)
            follow |= sel & is_rt
            continue
        via_launch = _locate(launch_start, starts, ends, ids)
        via_launch[launch_start < 0] = -1
        gpu_step = np.where(via_launch >= 0, via_launch, own)
        step = np.where(sel & is_gpu, gpu_step, np.where(sel, own, step))
    # a runtime call outside every step takes the step of a GPU event it launched
    follow = (follow | (is_rt & (step < 0))) & (corr >= 0)
    if follow.any():
        gpu_steps = pd.DataFrame({"rank": rank[is_gpu], "correlation_id": corr[is_gpu],
                                  "s": step[is_gpu]}).drop_duplicates(["rank", "correlation_id"])
        rows = np.flatnonzero(follow)
        hit = pd.DataFrame({"rank": rank[rows], "correlation_id": corr[rows]}).merge(
            gpu_steps, how="left", on=["rank", "correlation_id"])["s"]
        step[rows] = hit.fillna(-1).to_numpy(np.int64)
    # object columns stay object (pandas would copy every string into an arrow array)
    return out.assign(step=step, launch_start_ns=launch_start,
                      launch_name=pd.Series(launch_name, index=out.index, dtype=object))
