"""Step annotations parsed through the engine specs, step cutting and assignment."""

from __future__ import annotations

import pytest

from analyzers.kernels.analysis import prepare_trace
from analyzers.kernels.steps import (
    StepPhase,
    StepSource,
    cut_steps,
    parse_step_name,
    step_annotations,
)
from servescope.engines.registry import UnknownEngineError
from servescope.records.kernels import TraceEventKind
from tests.analyzers.kernels._events import Trace

VLLM = step_annotations("vllm")
DECODE_NAME = "execute_context_0(0)_generation_8(8)"
SGLANG = step_annotations("sglang")


@pytest.mark.parametrize(("name", "phase", "batch", "tokens", "pre", "dec"), [
    ("execute_context_1(10)_generation_0(0)", StepPhase.PREFILL, 1, 10, (1, 10), (0, 0)),
    ("execute_context_3(27)_generation_1(1)", StepPhase.MIXED, 4, 28, (3, 27), (1, 1)),
    ("execute_context_0(0)_generation_8(8)", StepPhase.DECODE, 8, 8, (0, 0), (8, 8)),
    ("execute_context_0(0)_generation_0(0)", StepPhase.EMPTY, 0, 0, (0, 0), (0, 0)),
    ("execute_542_context_1(sq512sk512sqsq262144sqsk262144)"
     "_generation_30(sq30sk9000sqsq30sqsk9000)", StepPhase.MIXED, 31, 542, (1, 512), (30, 30)),
])
def test_vllm_annotations(name: str, phase: StepPhase, batch: int, tokens: int,
                          pre: tuple[int, int], dec: tuple[int, int]) -> None:
    got = parse_step_name(name, VLLM)
    assert got is not None
    assert (got["phase"], got["batch_reqs"], got["tokens"]) == (phase, batch, tokens)
    assert (got["prefill_reqs"], got["prefill_tokens"]) == pre
    assert (got["decode_reqs"], got["decode_tokens"]) == dec


@pytest.mark.parametrize(("name", "phase", "batch", "tokens"), [
    ("step[EXTEND bs=4 toks=2048]", StepPhase.PREFILL, 4, 2048),
    ("step[DECODE bs=32]", StepPhase.DECODE, 32, 32),
    ("step[MIXED bs=8 toks=530]", StepPhase.MIXED, 8, 530),
    ("step[EXTEND bs=1 toks=512 c_sq=512 c_sk=512 forward_id=7]", StepPhase.PREFILL, 1, 512),
    ("step[TARGET_VERIFY bs=2]", StepPhase.OTHER, 2, None),
])
def test_sglang_annotations(name: str, phase: StepPhase, batch: int,
                            tokens: int | None) -> None:
    got = parse_step_name(name, SGLANG)
    assert got is not None
    assert (got["phase"], got["batch_reqs"], got["tokens"]) == (phase, batch, tokens)


def test_patterns_come_from_the_named_engine() -> None:
    assert parse_step_name("step[DECODE bs=32]", VLLM) is None
    assert parse_step_name("execute_context_0(0)_generation_8(8)", SGLANG) is None
    both = step_annotations(None)
    assert parse_step_name("step[DECODE bs=32]", both) is not None
    assert parse_step_name("execute_context_0(0)_generation_8(8)", both) is not None
    assert step_annotations("openai") == ()  # an engine without a profiler window
    with pytest.raises(UnknownEngineError):
        step_annotations("vlm")


def test_profiler_step_fallback_and_ranks_apart() -> None:
    t = Trace()
    t.step("ProfilerStep#4", 0, 1000, rank=0)
    t.step("ProfilerStep#5", 1000, 1000, rank=0)
    t.step("execute_context_0(0)_generation_2(2)", 500, 300, rank=1)
    t.step("some_other_range", 900, 50, rank=1)
    steps = cut_steps(prepare_trace(t.frame()).events)
    assert [(s.index, s.rank, s.name, s.source) for s in steps] == [
        (0, 0, "ProfilerStep#4", StepSource.PROFILER_STEP),
        (1, 0, "ProfilerStep#5", StepSource.PROFILER_STEP),
        (2, 1, "execute_context_0(0)_generation_2(2)", StepSource.ANNOTATION)]
    assert steps[0].phase is StepPhase.UNKNOWN
    assert steps[2].phase is StepPhase.DECODE


def test_launch_gap_clusters() -> None:
    # three bursts of 10 kernels 5 µs long, 2 µs apart; bursts 1 ms apart (>= 200 µs and
    # >= 20 x the 2 µs median gap), so three steps with exactly these spans
    t = Trace()
    for burst in range(3):
        for i in range(10):
            t.kernel("k", burst * 1_000_000 + i * 7_000, 5_000)
    prep = prepare_trace(t.frame())
    assert [(s.source, s.t_start_ns, s.dur_ns) for s in prep.steps] == [
        (StepSource.LAUNCH_GAP, b * 1_000_000, 9 * 7_000 + 5_000) for b in range(3)]
    assert prep.events["step"].tolist() == [b for b in range(3) for _ in range(10)]


def test_kernel_follows_its_launch_not_the_clock() -> None:
    # step 0's launch at 90 µs starts a kernel at 150 µs, inside step 1's annotation: it is
    # step 0's; a kernel without a runtime call goes by its start; a runtime call outside
    # every step takes its kernel's step
    t = Trace()
    t.step("execute_context_0(0)_generation_1(1)", 0, 100_000)
    t.step("execute_context_0(0)_generation_1(1)", 120_000, 80_000)
    t.launch("late", 90_000, 5_000, 150_000, 20_000)
    t.kernel("orphan", 160_000, 1_000)
    t.launch("outside", 105_000, 5_000, 130_000, 1_000)
    ev = prepare_trace(t.frame()).events
    got = {(k, n): s for k, n, s in zip(ev["kind"], ev["name"], ev["step"], strict=True)}
    assert got[("kernel", "late")] == 0
    assert got[("kernel", "orphan")] == 1
    assert got[("kernel", "outside")] == 1  # launched outside every step: by its start
    launches = ev[ev["kind"] == TraceEventKind.RUNTIME.value].sort_values("t_start_ns")
    assert launches["step"].tolist() == [0, 1]


def test_launch_gap_clusters_follow_kernels_not_launches() -> None:
    # the CPU launches step 1's kernels while step 0's still run (launches at 50..59 µs,
    # inside cluster 0's GPU span 0..1000 µs): they still belong to cluster 1 (kernels at 2 ms)
    t = Trace()
    t.launch("a", 0, 1_000, 10_000, 990_000)
    for i in range(10):
        t.launch("b", 50_000 + i * 1_000, 500, 2_000_000 + i * 6_000, 5_000)
    ev = prepare_trace(t.frame()).events
    rt = ev[ev["kind"] == TraceEventKind.RUNTIME.value]
    gpu = ev[ev["kind"] == TraceEventKind.KERNEL.value]
    assert gpu["step"].tolist() == [0] + [1] * 10
    assert rt["step"].tolist() == [0] + [1] * 10


def test_gpu_side_copies_of_annotations_are_not_steps() -> None:
    # kineto projects a record_function range onto the GPU (cat gpu_user_annotation); the
    # ingestion keeps it as an annotation with a device, or its cat column says so
    t = Trace()
    t.step(DECODE_NAME, 0, 100_000)
    t.add(TraceEventKind.ANNOTATION, DECODE_NAME, 20_000, 90_000, device=0, stream=7)
    frame = t.frame()
    assert len(cut_steps(prepare_trace(frame).events)) == 1
    t.add(TraceEventKind.ANNOTATION, DECODE_NAME, 30_000, 80_000)
    frame = t.frame().assign(cat=["user_annotation", "gpu_user_annotation",
                                  "gpu_user_annotation"])
    assert [s.t_start_ns for s in prepare_trace(frame).steps] == [0]
