"""Rules over the run's kernel timeline (``RUN/kernels/``, issue 11): what the GPU did per
engine step inside the profiler window. Each is silent on a run without kernel tables, on
tables that cannot be analysed, and on a trace without GPU events (a CPU-only engine's
trace has steps but no kernels: nothing to judge). Thresholds are module constants.

The window they judge is the profiled steps' (the first step's start to the last step's
end), not the rules' steady-state window: the profiler window is a bounded slice that the
collector placed inside the steady state.

**Launch-bound, two views.** :func:`gpu_launch_bound` (gpu_rules) judges the whole window
from GPU telemetry (SM busy, NVML); :func:`kernel_launch_bound` judges the profiled steps
from their kernels (idle share of each step, kernels per step, kernel length). Both keep
their own ids. The kernel rule never repeats the telemetry finding: when that one fires too,
the kernel finding is INFO, titled as a confirmation, and carries only the per-step
evidence (the telemetry finding holds the severity and the actions); when the run has GPU
telemetry and it does not fire, the kernel finding says so and keeps its own severity (the
profiled slice disagrees with the window: read both); without telemetry it says none was
recorded. Evidence ``gpu_telemetry_agrees`` is 1 / 0 / NaN for these three cases.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from analyzers.bottlenecks.context import RuleContext
from analyzers.bottlenecks.gpu_rules import gpu_launch_bound
from analyzers.findings import Evidence, Finding, Severity, sample_ids
from analyzers.kernels.categories import KernelCategory
from analyzers.kernels.report_data import run_kernels, step_medians
from servescope.engines.base import Knob

if TYPE_CHECKING:
    from analyzers.kernels.analysis import KernelAnalysis

__all__ = ["COMMUNICATION_CRITICAL_FRAC", "COMMUNICATION_SHARE_FRAC", "DECODE_DOMINANT_FRAC",
           "DECODE_MIN_STEPS", "LAUNCH_CRITICAL_IDLE_FRAC", "communication_span_frac",
           "kernel_communication_share", "kernel_decode_dominated", "kernel_launch_bound",
           "kernels_of"]

LAUNCH_CRITICAL_IDLE_FRAC = 0.75
"""A launch-bound trace whose GPU is idle at least this share of its steps' span (the
verdict's ``idle_frac``) is critical: the GPU works a quarter of the time or less, so CUDA
graphs could make the steps several times shorter."""

DECODE_DOMINANT_FRAC = 0.5
"""A category holding at least half of the decode steps' GPU time dominates decode: it is
where a faster kernel or fewer bytes pays back most."""

DECODE_MIN_STEPS = 3
"""Fewer decode steps with GPU work than this say nothing about decode as a whole."""

COMMUNICATION_SHARE_FRAC = 0.20
"""Communication kernels (NCCL, custom all-reduce) running at least a fifth of the steps'
span: tensor-parallel decode on NVLink usually spends 5-15 % of a step in all-reduce, so at
20 % the split costs more than it gains for this model size and batch."""

COMMUNICATION_CRITICAL_FRAC = 0.40
"""... and at 40 % the GPUs spend more time talking than half of their computing."""


def kernels_of(ctx: RuleContext) -> KernelAnalysis | None:
    """The run's kernel analysis, None without readable kernel tables."""
    eng = ctx.run.manifest.engine
    rk = run_kernels(ctx.run.path, eng.name if eng is not None else None)
    return None if rk is None else rk.analysis


def _finding(ctx: RuleContext, a: KernelAnalysis, rule: str, severity: Severity, *,
             title: str, summary: str, evidence: list[Evidence],
             actions: tuple[str, ...]) -> Finding:
    """A finding over the profiled steps' span, with the measured requests in flight then."""
    t0 = min(s.t_start_ns for s in a.steps)
    t1 = max(s.t_start_ns + s.dur_ns for s in a.steps)
    ids = (ctx.requests_overlapping(np.array([t0]), np.array([t1]))
           if len(ctx.measured) else np.empty(0, np.int64))
    return Finding(rule=rule, severity=severity, title=title, summary=summary,
                   evidence=tuple(evidence), window_start_ns=int(t0), window_end_ns=int(t1),
                   requests_affected=len(ids), request_ids=sample_ids(ids), actions=actions)


def _us(ns: float) -> str:
    return "n/a" if math.isnan(ns) else f"{ns / 1e3:.1f} µs"


def _telemetry(ctx: RuleContext) -> tuple[float, str]:
    """(1 agrees / 0 disagrees / NaN no telemetry, the sentence that says so)."""
    g = ctx.gpu.combined if ctx.gpu is not None and ctx.gpu.gpus else None
    if g is None:
        return math.nan, "No GPU telemetry was recorded to compare with (--collect gpu)."
    sm = "n/a" if math.isnan(g.sm_busy_frac) else f"{g.sm_busy_frac:.0%}"
    if gpu_launch_bound(ctx) is not None:
        return 1.0, (f"GPU telemetry agrees over the whole window (SMs busy {sm}; finding "
                     "gpu_launch_bound has the actions).")
    return 0.0, (f"GPU telemetry does not call the window launch-bound (SMs busy {sm}): the "
                 "profiled steps may not be typical of the window.")


def kernel_launch_bound(ctx: RuleContext) -> Finding | None:
    """The kernel analysis' verdict: launch-bound steps (GPU idle most of the step, many
    short kernels) hold at least half of the profiled steps' span."""
    a = kernels_of(ctx)
    if a is None or not a.verdict.launch_bound:
        return None
    v, m = a.verdict, step_medians(a.timelines)
    agrees, telemetry = _telemetry(ctx)
    graphs = m.graph_launches_per_step > 0
    evidence = [
        Evidence("launch_bound_steps", float(v.launch_bound_steps),
                 f"of {v.steps_with_gpu} steps with GPU work"),
        Evidence("launch_bound_span_frac", v.launch_bound_span_frac,
                 "their share of the steps' span"),
        Evidence("gpu_idle_frac", v.idle_frac, "Σ idle / Σ span over steps with GPU work"),
        Evidence("step_gpu_busy_median_frac", m.busy_frac, "median over steps of busy / span"),
        Evidence("kernels_per_step_median", m.kernels_per_step, "GPU events per step"),
        Evidence("kernel_median_ns", v.kernel_median_ns, "every GPU event in a step"),
        Evidence("launch_overhead_median_ratio", m.launch_overhead_ratio,
                 "runtime-call time / kernel time, median over steps"),
        Evidence("queue_delay_median_ns", m.queue_delay_ns,
                 "launch call start → kernel start, median of the steps' medians"),
        Evidence("idle_before_first_kernel_median_ns", m.idle_before_first_ns),
        Evidence("graph_launches_per_step_median", m.graph_launches_per_step),
        Evidence("gpu_telemetry_agrees", agrees, "1 agrees, 0 disagrees, NaN none recorded"),
    ]
    summary = (f"{v.launch_bound_steps} of {v.steps_with_gpu} profiled steps are launch-bound "
               f"({v.launch_bound_span_frac:.0%} of their time): the median step kept the GPU "
               f"busy {m.busy_frac:.0%} of its span with {m.kernels_per_step:.0f} kernels of "
               f"median {_us(v.kernel_median_ns)}, the host spending "
               f"{m.launch_overhead_ratio:.1f}x the kernel time in launch calls, "
               f"{_us(m.idle_before_first_ns)} idle before the first kernel. {telemetry}")
    cuda = ctx.action(Knob.CUDA_GRAPHS)
    if graphs:
        cuda += " (the steps already replay CUDA graphs: check that every batch size is captured)"
    actions = (ctx.action(Knob.ASYNC_SCHEDULING), cuda) if graphs else (
        cuda, ctx.action(Knob.ASYNC_SCHEDULING))
    if agrees == 1.0:
        return _finding(ctx, a, "kernel_launch_bound", Severity.INFO,
                        title="The kernel trace confirms launch-bound steps", summary=summary,
                        evidence=evidence, actions=())
    severity = (Severity.CRITICAL if v.idle_frac >= LAUNCH_CRITICAL_IDLE_FRAC
                else Severity.WARNING)
    return _finding(ctx, a, "kernel_launch_bound", severity,
                    title="Engine steps are launch-bound: the GPU waits for kernel launches",
                    summary=summary, evidence=evidence, actions=actions)


def _decode_gpu_ns(a: KernelAnalysis) -> float:
    return float(sum(t.kernel_time_ns for t in a.timelines if t.phase == "decode"))


def kernel_decode_dominated(ctx: RuleContext) -> Finding | None:
    """Attention or GEMM kernels hold at least :data:`DECODE_DOMINANT_FRAC` of the decode
    steps' GPU time (shares of Σ GPU event durations in decode steps)."""
    a = kernels_of(ctx)
    shares = a.phase_shares.get("decode") if a is not None else None
    if a is None or shares is None:
        return None
    m = step_medians(a.timelines, "decode")
    if m.steps < DECODE_MIN_STEPS:
        return None
    attn = shares.get(KernelCategory.ATTENTION.value, 0.0)
    gemm = shares.get(KernelCategory.GEMM.value, 0.0)
    what, share = ("attention", attn) if attn >= gemm else ("GEMM", gemm)
    if share < DECODE_DOMINANT_FRAC:
        return None
    evidence = [Evidence("decode_steps", float(m.steps), "decode steps with GPU work"),
                Evidence("decode_attention_frac", attn, "of decode GPU event time"),
                Evidence("decode_gemm_frac", gemm, "of decode GPU event time"),
                Evidence("decode_communication_frac",
                         shares.get(KernelCategory.COMMUNICATION.value, 0.0)),
                Evidence("decode_gpu_ns", _decode_gpu_ns(a), "Σ GPU event time in decode"),
                Evidence("decode_step_gpu_busy_median_frac", m.busy_frac)]
    if what == "attention":
        actions = (ctx.action(Knob.QUANTIZATION) + " (an FP8 KV cache halves the bytes "
                   "attention reads per token)",
                   ctx.action(Knob.MAX_MODEL_LEN) + " (attention time grows with context)",
                   "split the heads over more GPUs (tensor parallelism) if one GPU's memory "
                   "bandwidth is the limit")
        why = "reading the KV cache: long contexts or many sequences"
    else:
        actions = (ctx.action(Knob.QUANTIZATION) + " (fewer weight bytes per step)",
                   ctx.action(Knob.MAX_BATCH) + " (a larger batch reads the weights once "
                   "for more tokens)",
                   "split the weights over more GPUs (tensor parallelism) if the per-step "
                   "latency must drop")
        why = "the weight matrices: decode reads every weight once per step"
    return _finding(
        ctx, a, "kernel_decode_dominated", Severity.INFO,
        title=f"Decode is dominated by {what}",
        summary=(f"In {m.steps} decode steps, {what} kernels took {share:.0%} of the GPU time "
         f"(attention {attn:.0%}, GEMM {gemm:.0%}): decode time goes to {why}."),
        evidence=evidence, actions=actions)


def communication_span_frac(a: KernelAnalysis) -> tuple[float, float]:
    """(Σ communication kernel time in steps / Σ span of the steps with GPU work, Σ
    communication ns): each phase's communication share of its GPU time times that phase's
    GPU time. Kernels of several devices of one step all count, so on a multi-GPU rank the
    share can exceed what one device spent."""
    gpu_by_phase: dict[str, float] = {}
    span = 0
    for t in a.timelines:
        if t.gpu_events:
            gpu_by_phase[t.phase] = gpu_by_phase.get(t.phase, 0.0) + t.kernel_time_ns
            span += t.span_ns
    comm = sum(a.phase_shares.get(ph, {}).get(KernelCategory.COMMUNICATION.value, 0.0) * ns
               for ph, ns in gpu_by_phase.items())
    return (comm / span if span else math.nan), comm


def kernel_communication_share(ctx: RuleContext) -> Finding | None:
    """Communication kernels ran at least :data:`COMMUNICATION_SHARE_FRAC` of the profiled
    steps' span."""
    a = kernels_of(ctx)
    if a is None:
        return None
    frac, comm_ns = communication_span_frac(a)
    if not frac >= COMMUNICATION_SHARE_FRAC:
        return None
    gpu_share = next((c.share_frac for c in a.categories
                      if c.category == KernelCategory.COMMUNICATION.value), math.nan)
    ranks = len({s.rank for s in a.steps})
    return _finding(
        ctx, a, "kernel_communication_share",
        Severity.CRITICAL if frac >= COMMUNICATION_CRITICAL_FRAC else Severity.WARNING,
        title="Communication kernels take a large share of each step",
        summary=(f"NCCL / all-reduce kernels ran {frac:.0%} of the profiled steps' time "
         f"({gpu_share:.0%} of all GPU kernel time, {ranks} rank(s)): the GPUs wait on each "
         "other; the tensor-parallel split costs more than it gains at this batch."),
        evidence=[Evidence("communication_span_frac", frac, "Σ communication time / Σ step span"),
         Evidence("communication_gpu_frac", gpu_share, "of all GPU event time"),
         Evidence("communication_ns", comm_ns, "in steps"),
         Evidence("ranks", float(ranks))],
        actions=("use fewer tensor-parallel GPUs per replica and more replicas (data parallelism), "
         "if the model fits",
         "check the interconnect: all-reduce over PCIe instead of NVLink is several times "
         "slower (nvidia-smi topo -m)",
         "keep the engine's custom all-reduce on (vLLM: no --disable-custom-all-reduce)"))
