"""The kernel-evidence rules on run directories whose kernel tables the test writes: each
fires with evidence equal to a computation straight from the events the test made, agrees or
disagrees with the GPU telemetry the test sets, and is silent without kernels and on the real
vLLM-CPU capture (steps, no GPU events)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from analyzers.bottlenecks import RULES, build_context, find_bottlenecks
from analyzers.bottlenecks.context import RuleContext
from analyzers.bottlenecks.gpu_rules import gpu_launch_bound
from analyzers.bottlenecks.kernel_rules import (
    COMMUNICATION_SHARE_FRAC,
    DECODE_DOMINANT_FRAC,
    kernel_communication_share,
    kernel_decode_dominated,
    kernel_launch_bound,
    kernels_of,
)
from analyzers.context import RunContext
from analyzers.findings import Severity
from collectors.kernels import ingest_traces
from tests.analyzers.gpu._rules_run import Gpu, rules_of
from tests.analyzers.kernels._events import VLLM_CPU_TRACE, Trace
from tests.analyzers.kernels._kernel_runs import write_kernel_tables
from tests.analyzers.kernels.test_breakdown import two_phase_trace

DECODE = "execute_context_0(0)_generation_8(8)"
KERNEL_RULES = ("kernel_launch_bound", "kernel_decode_dominated", "kernel_communication_share")


def eager_steps(n_steps: int = 5) -> Trace:
    """Step k (3 ms apart): a (2 + 0.1k) ms annotation with 30 + 5k launches (8 µs calls)
    every 30 µs from 100 µs; each kernel (4 + k) µs long, starting (12 + k) µs after its
    launch."""
    t = Trace()
    for k in range(n_steps):
        t0 = k * 3_000_000
        t.step(DECODE, t0, 2_000_000 + 100_000 * k)
        for i in range(30 + 5 * k):
            launch = t0 + 100_000 + i * 30_000
            t.launch(f"elementwise_{i % 3}", launch, 8_000, launch + (12 + k) * 1000,
                     (4 + k) * 1000)
    return t


def per_step(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Each annotation's figures from the raw rows: its kernels are those whose launch call
    starts inside it; busy by marking every covered µs."""
    ann = frame[frame["kind"] == "annotation"].sort_values("t_start_ns")
    rt = frame[frame["kind"] == "runtime"]
    gpu = frame[frame["kind"].isin(["kernel", "memcpy", "memset"])]
    out = []
    for a0, dur in zip(ann["t_start_ns"], ann["dur_ns"], strict=True):
        a1 = a0 + dur
        calls = rt[(rt["t_start_ns"] >= a0) & (rt["t_start_ns"] < a1)]
        k = gpu[gpu["correlation_id"].isin(calls["correlation_id"])]
        launch = calls.set_index("correlation_id")["t_start_ns"]
        first, last = k["t_start_ns"].min(), (k["t_start_ns"] + k["dur_ns"]).max()
        t0, t1 = min(a0, first), max(a1, last)
        covered: set[int] = set()
        for s, d in zip(k["t_start_ns"], k["dur_ns"], strict=True):
            covered.update(range(s // 1000, (s + d) // 1000))
        out.append({"span": t1 - t0, "busy": len(covered) * 1000, "n": len(k),
                    "before": first - t0, "runtime": calls["dur_ns"].sum(),
                    "kernel": k["dur_ns"].sum(),
                    "queue": statistics.median(
                        s - launch[c] for s, c in zip(k["t_start_ns"], k["correlation_id"],
                                                      strict=True)),
                    "durs": list(k["dur_ns"])})
    return out


def with_kernels(ctx: RuleContext, trace: Trace) -> RuleContext:
    write_kernel_tables(ctx.run.path, trace.frame())
    return ctx


def bare(tmp: Path, name: str = "run", trace: Trace | None = None) -> RuleContext:
    """A run without GPU telemetry, vLLM named as its engine, with ``trace``'s tables."""
    ctx = rules_of(tmp, None, name=name, command=["vllm", "serve", "m"])
    return ctx if trace is None else with_kernels(ctx, trace)


def test_every_kernel_rule_is_registered() -> None:
    assert [n for n in RULES if n.startswith("kernel_")] == list(KERNEL_RULES)


def test_launch_bound_evidence_equals_the_raw_steps(tmp_path: Path) -> None:
    trace = eager_steps()
    steps = per_step(trace.frame())
    ctx = bare(tmp_path, trace=trace)
    f = kernel_launch_bound(ctx)
    assert f is not None
    span = sum(s["span"] for s in steps)
    idle = sum(s["span"] - s["busy"] for s in steps)
    assert f.value("launch_bound_steps") == 5
    assert f.value("launch_bound_span_frac") == 1.0
    assert f.value("gpu_idle_frac") == pytest.approx(idle / span, rel=1e-12)
    assert idle / span > 0.75  # so: critical, without telemetry to defer to
    assert f.severity == Severity.CRITICAL
    assert f.value("step_gpu_busy_median_frac") == pytest.approx(
        statistics.median(s["busy"] / s["span"] for s in steps), rel=1e-12)
    assert f.value("kernels_per_step_median") == statistics.median(s["n"] for s in steps) == 40
    assert f.value("kernel_median_ns") == statistics.median(
        d for s in steps for d in s["durs"])
    assert f.value("launch_overhead_median_ratio") == pytest.approx(
        statistics.median(s["runtime"] / s["kernel"] for s in steps), rel=1e-12)
    assert f.value("queue_delay_median_ns") == statistics.median(s["queue"] for s in steps)
    assert f.value("idle_before_first_kernel_median_ns") == statistics.median(
        s["before"] for s in steps)
    assert f.value("graph_launches_per_step_median") == 0
    assert math.isnan(f.value("gpu_telemetry_agrees"))
    assert "No GPU telemetry" in f.summary
    assert "CUDA graphs" in f.actions[0] or "cudagraph" in f.actions[0].lower()
    assert "vllm" in f.actions[0]  # the engine's own flags
    # the finding's window is the profiled steps'
    assert (f.window_start_ns, f.window_end_ns) == (0, 4 * 3_000_000 + 2_400_000)
    m = ctx.measured
    assert f.requests_affected == int(((m["t_send_ns"] <= f.window_end_ns)
                                       & (m["t_last_ns"] >= f.window_start_ns)).sum())


def test_launch_bound_with_gpu_telemetry_agreeing_or_not(tmp_path: Path) -> None:
    # telemetry says launch-bound too: the kernel finding confirms, INFO, no actions of its own
    agree = with_kernels(rules_of(tmp_path, Gpu(sm_util=15.0, occupancy=8.0, nvml=0.9,
                                                tensor=3.0), stacks=0.97, name="a"),
                         eager_steps())
    assert gpu_launch_bound(agree) is not None
    f = kernel_launch_bound(agree)
    assert f is not None
    assert (f.severity, f.actions, f.value("gpu_telemetry_agrees")) == (Severity.INFO, (), 1.0)
    assert "confirms" in f.title
    assert "SMs busy 15%" in f.summary
    found = [x.rule for x in find_bottlenecks(agree)]
    assert found.count("gpu_launch_bound") == found.count("kernel_launch_bound") == 1
    # a balanced GPU: the telemetry rule is silent, the kernel rule says they disagree
    other = with_kernels(rules_of(tmp_path, Gpu(), name="b"), eager_steps())
    assert gpu_launch_bound(other) is None
    f = kernel_launch_bound(other)
    assert f is not None
    assert f.value("gpu_telemetry_agrees") == 0.0
    assert f.severity == Severity.CRITICAL
    assert "does not call the window launch-bound (SMs busy 70%)" in f.summary
    assert f.actions


def test_cuda_graph_steps_are_not_launch_bound(tmp_path: Path) -> None:
    t = Trace()
    for k in range(3):  # one graph launch of 100 back-to-back 8 µs kernels per 1 ms step
        t0 = k * 2_000_000
        t.step(DECODE, t0, 1_000_000)
        corr = t.launch("gemv_0", t0 + 50_000, 20_000, t0 + 80_000, 8_000,
                        runtime="cudaGraphLaunch")
        for i in range(1, 100):
            t.kernel(f"gemv_{i % 4}", t0 + 80_000 + i * 8_500, 8_000, corr=corr)
    assert kernel_launch_bound(bare(tmp_path, trace=t)) is None


def test_decode_dominated_by_gemm_or_attention(tmp_path: Path) -> None:
    # decode: gemm 40 µs, flash 20, memcpy 5, elementwise 3 + 7 per step (three steps)
    gemm = kernel_decode_dominated(bare(tmp_path, "g", two_phase_trace(40_000)))
    assert gemm is not None
    assert gemm.title == "Decode is dominated by GEMM"
    assert gemm.value("decode_gemm_frac") == pytest.approx(40 / 75)
    assert gemm.value("decode_attention_frac") == pytest.approx(20 / 75)
    assert gemm.value("decode_steps") == 3
    assert gemm.value("decode_gpu_ns") == 3 * 75_000
    assert "a larger batch" in gemm.actions[1]
    # 30 µs of GEMM: 30 / 65 < one half, nothing dominates
    assert DECODE_DOMINANT_FRAC > 30 / 65
    assert kernel_decode_dominated(bare(tmp_path, "n", two_phase_trace(30_000))) is None
    t = Trace()
    for k in range(4):
        t0 = k * 1_000_000
        t.step(DECODE, t0, 500_000)
        t.launch("sm90_xmma_gemm", t0 + 1_000, 2_000, t0 + 10_000, 20_000)
        t.launch("flash_fwd_splitkv_kernel", t0 + 3_000, 2_000, t0 + 40_000, 60_000)
        t.launch("rms_norm_kernel", t0 + 5_000, 2_000, t0 + 110_000, 10_000)
    attn = kernel_decode_dominated(bare(tmp_path, "a", t))
    assert attn is not None
    assert attn.title == "Decode is dominated by attention"
    assert attn.value("decode_attention_frac") == pytest.approx(60 / 90)
    assert attn.value("decode_steps") == 4
    assert "KV cache" in attn.actions[0]


def comm_trace(nccl_ns: int, ranks: int = 1) -> Trace:
    """Three 1 ms decode steps per rank: a 300 µs GEMM then an ``nccl_ns`` all-reduce."""
    t = Trace()
    for r in range(ranks):
        for k in range(3):
            t0 = k * 2_000_000
            t.step(DECODE, t0, 1_000_000, rank=r)
            t.launch("sm90_xmma_gemm", t0 + 1_000, 5_000, t0 + 10_000, 300_000, rank=r)
            t.launch("ncclDevKernel_AllReduce_Sum_bf16_RING_LL", t0 + 7_000, 5_000,
                     t0 + 320_000, nccl_ns, rank=r)
    return t


def test_communication_share(tmp_path: Path) -> None:
    for name, nccl, ranks, severity in (("w", 250_000, 1, Severity.WARNING),
                                        ("c", 450_000, 2, Severity.CRITICAL)):
        trace = comm_trace(nccl, ranks)
        frame = trace.frame()
        ann = frame[frame["kind"] == "annotation"]
        k = frame[frame["kind"] == "kernel"]
        nccl_rows = k[k["name"].str.contains("nccl")]
        expected = nccl_rows["dur_ns"].sum() / ann["dur_ns"].sum()  # kernels inside the steps
        f = kernel_communication_share(bare(tmp_path, name, trace))
        assert f is not None
        assert f.value("communication_span_frac") == pytest.approx(expected, rel=1e-12)
        assert f.value("communication_ns") == nccl_rows["dur_ns"].sum()
        assert f.value("communication_gpu_frac") == pytest.approx(
            nccl_rows["dur_ns"].sum() / k["dur_ns"].sum())
        assert (f.value("ranks"), f.severity) == (ranks, severity)
        assert "tensor-parallel" in f.actions[0]
    assert COMMUNICATION_SHARE_FRAC > 100_000 / 1_000_000
    assert kernel_communication_share(bare(tmp_path, "q", comm_trace(100_000))) is None


def test_silent_without_kernels_and_on_the_cpu_only_capture(tmp_path: Path) -> None:
    plain = bare(tmp_path, "plain")
    assert kernels_of(plain) is None
    assert [f.rule for f in find_bottlenecks(plain) if f.rule.startswith("kernel_")] == []
    ctx = bare(tmp_path, "cpu")
    ingest_traces([VLLM_CPU_TRACE], ctx.run.path, None)
    a = kernels_of(ctx)
    assert a is not None  # analysed: 34 steps on vLLM's annotations, no GPU events
    assert (len(a.steps), a.gpu_events, a.verdict.steps_with_gpu) == (34, 0, 0)
    for rule in (kernel_launch_bound, kernel_decode_dominated, kernel_communication_share):
        assert rule(ctx) is None
    again = build_context(RunContext(ctx.run.path))
    assert [f.rule for f in find_bottlenecks(again) if f.rule.startswith("kernel_")] == []


def test_unreadable_kernel_tables_are_silent(tmp_path: Path) -> None:
    ctx = bare(tmp_path)
    (ctx.run.path / "kernels").mkdir()
    (ctx.run.path / "kernels" / "gpu.parquet").write_bytes(b"not parquet")
    assert kernels_of(ctx) is None
    assert kernel_launch_bound(ctx) is None
