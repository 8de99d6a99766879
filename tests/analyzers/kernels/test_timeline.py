"""Per-step busy/idle, launch figures, graph replays and the launch-bound verdict on traces
built by hand (expected numbers worked out in the comments, or by brute force)."""

from __future__ import annotations

import math

from analyzers.kernels import analyze_kernels
from analyzers.kernels.timeline import (
    LAUNCH_BOUND_IDLE_FRAC,
    LAUNCH_BOUND_MIN_KERNELS,
    LAUNCH_BOUND_SHORT_KERNEL_NS,
)
from tests.analyzers.kernels._events import Trace

DECODE = "execute_context_0(0)_generation_8(8)"


def eager_decode(t: Trace, t0: int) -> None:
    """A 2 ms decode step: 50 launches (10 µs each) every 30 µs from t0+100 µs, each kernel
    5 µs long starting 15 µs after its launch."""
    t.step(DECODE, t0, 2_000_000)
    for i in range(50):
        launch = t0 + 100_000 + i * 30_000
        t.launch(f"vectorized_elementwise_kernel_{i % 5}", launch, 10_000, launch + 15_000,
                 5_000)


def graph_decode(t: Trace, t0: int) -> None:
    """A 1 ms decode step: one cudaGraphLaunch at t0+50 µs whose 100 kernels (8 µs, 0.5 µs
    apart) all carry its correlation id, the first at t0+80 µs."""
    t.step(DECODE, t0, 1_000_000)
    corr = t.launch("gemv_0", t0 + 50_000, 20_000, t0 + 80_000, 8_000,
                    runtime="cudaGraphLaunch")
    for i in range(1, 100):
        t.kernel(f"gemv_{i % 4}", t0 + 80_000 + i * 8_500, 8_000, corr=corr)


def test_eager_decode_is_launch_bound() -> None:
    t = Trace()
    eager_decode(t, 0)
    eager_decode(t, 3_000_000)
    res = analyze_kernels(t.frame(), engine="vllm")
    assert len(res.timelines) == 2
    for s in res.timelines:
        # last kernel: 115 µs + 49 x 30 µs = 1585 µs, ends 1590 µs, before the annotation's end
        assert (s.wall_ns, s.span_ns, s.gpu_busy_ns) == (2_000_000, 2_000_000, 250_000)
        assert s.gpu_idle_ns == 1_750_000
        assert s.idle_frac == 0.875
        assert s.idle_before_first_ns == 115_000
        assert s.idle_after_last_ns == 2_000_000 - 1_590_000
        assert s.idle_between_ns == 1_590_000 - 115_000 - 250_000
        assert (s.kernels, s.gpu_events, s.kernel_time_ns, s.kernel_median_ns) == (
            50, 50, 250_000, 5_000)
        assert (s.runtime_calls, s.runtime_ns, s.launch_overhead_ratio) == (50, 500_000, 2.0)
        assert (s.queue_delay_mean_ns, s.queue_delay_p50_ns, s.queue_delay_max_ns) == (
            15_000, 15_000, 15_000)
        assert (s.graph_launches, s.graph_kernels) == (0, 0)
        assert s.launch_bound
        # the thresholds hold with room
        assert s.idle_frac > LAUNCH_BOUND_IDLE_FRAC
        assert s.kernels >= LAUNCH_BOUND_MIN_KERNELS
        assert s.kernel_median_ns < LAUNCH_BOUND_SHORT_KERNEL_NS
    v = res.verdict
    assert v.launch_bound
    assert (v.steps_with_gpu, v.launch_bound_steps, v.launch_bound_span_frac) == (2, 2, 1.0)
    assert (v.idle_frac, v.kernel_median_ns, v.kernels_per_step_median) == (0.875, 5_000, 50)


def test_graph_replay_is_not_launch_bound() -> None:
    t = Trace()
    graph_decode(t, 0)
    graph_decode(t, 2_000_000)
    res = analyze_kernels(t.frame(), engine="vllm")
    for s in res.timelines:
        # kernels 80 µs .. 80 + 99 x 8.5 + 8 = 929.5 µs; busy 100 x 8 µs
        assert (s.span_ns, s.gpu_busy_ns, s.gpu_idle_ns) == (1_000_000, 800_000, 200_000)
        assert s.idle_frac == 0.2
        assert s.idle_before_first_ns == 80_000
        assert s.idle_between_ns == 99 * 500
        assert s.idle_after_last_ns == 1_000_000 - 929_500
        assert (s.graph_launches, s.graph_kernels, s.kernels, s.runtime_calls) == (1, 100, 100,
                                                                                    1)
        # one launch: one queue delay, its first kernel's (80 - 50 µs)
        assert (s.queue_delay_mean_ns, s.queue_delay_max_ns) == (30_000, 30_000)
        assert s.launch_overhead_ratio == 20_000 / 800_000
        assert not s.launch_bound
    assert not res.verdict.launch_bound
    assert res.verdict.launch_bound_steps == 0
    assert res.verdict.launch_bound_span_frac == 0.0


def test_mixed_trace_verdict_is_time_weighted() -> None:
    # one eager step (2 ms span, launch-bound) and two graph steps (1 ms each): 2/4 of the
    # span is launch-bound, which meets the 0.5 trace threshold
    t = Trace()
    eager_decode(t, 0)
    graph_decode(t, 3_000_000)
    graph_decode(t, 5_000_000)
    v = analyze_kernels(t.frame()).verdict
    assert (v.launch_bound_steps, v.launch_bound_span_frac, v.launch_bound) == (1, 0.5, True)
    assert v.idle_frac == (1_750_000 + 2 * 200_000) / 4_000_000


def brute_busy_us(intervals: list[tuple[int, int]]) -> int:
    """Busy µs by marking every µs covered (independent of the union code)."""
    covered: set[int] = set()
    for a, b in intervals:
        covered.update(range(a // 1000, b // 1000))
    return len(covered)


def test_union_of_overlapping_kernels_on_two_streams() -> None:
    t = Trace()
    t.step(DECODE, 0, 1_000_000)
    spans = [(100_000, 300_000, 7), (250_000, 400_000, 7), (350_000, 500_000, 8),
             (600_000, 700_000, 8), (620_000, 650_000, 7)]
    for a, b, stream in spans:
        t.kernel("k", a, b - a, stream=stream)
    # a kernel on another device of the rank: the step reports the busiest device
    t.kernel("k", 0, 10_000, device=1)
    s = analyze_kernels(t.frame()).timelines[0]
    busy_us = brute_busy_us([(a, b) for a, b, _ in spans])
    assert busy_us == 500
    assert s.gpu_busy_ns == busy_us * 1000
    assert s.devices == 2
    assert s.idle_before_first_ns == 100_000
    assert s.idle_between_ns == 100_000
    assert s.idle_after_last_ns == 300_000
    assert s.kernel_time_ns == sum(b - a for a, b, _ in spans) + 10_000
    assert math.isnan(s.queue_delay_mean_ns)  # no runtime calls seen


def test_kernels_past_the_annotation_extend_the_span() -> None:
    t = Trace()
    t.step(DECODE, 0, 100_000)
    t.launch("k", 90_000, 5_000, 150_000, 20_000)
    s = analyze_kernels(t.frame()).timelines[0]
    assert (s.wall_ns, s.span_ns, s.gpu_busy_ns, s.idle_after_last_ns) == (100_000, 170_000,
                                                                           20_000, 0)
    assert s.idle_before_first_ns == 150_000
    assert s.queue_delay_max_ns == 60_000


def test_to_json_round_trips_through_json() -> None:
    import json

    t = Trace()
    eager_decode(t, 0)
    out = json.loads(json.dumps(analyze_kernels(t.frame()).to_json()))
    assert out["timelines"][0]["launch_bound"] is True
    assert out["steps"][0]["phase"] == "decode"
    assert out["verdict"]["idle_frac"] == 0.875


def test_times_past_2_to_the_53_stay_exact() -> None:
    """A monotonic clock passes 2**53 ns after ~104 days of uptime: every per-step time must
    stay an exact integer there, also when another step has no GPU work (a missing value)."""
    t0 = 2**53 + 123_456_789
    t = Trace()
    eager_decode(t, t0)
    t.step(DECODE, t0 + 3_000_000, 1_000_000)  # a step without kernels
    res = analyze_kernels(t.frame(), engine="vllm")
    s, empty = res.timelines
    assert s.idle_before_first_ns == 115_000
    assert s.idle_after_last_ns == 2_000_000 - 1_590_000
    assert s.idle_between_ns == 1_590_000 - 115_000 - 250_000
    assert (s.span_ns, s.gpu_busy_ns, s.kernel_time_ns) == (2_000_000, 250_000, 250_000)
    assert (empty.gpu_events, empty.span_ns, empty.gpu_busy_ns) == (0, 1_000_000, 0)
