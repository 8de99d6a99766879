"""The GPU-aware rules on run directories whose GPU rows the test sets: each fires with
evidence computed from those rows, and is silent on a balanced run and without GPU data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analyzers.bottlenecks import RULES, find_bottlenecks
from analyzers.bottlenecks.gpu_rules import (
    gpu_compute_bound_prefill,
    gpu_idle_client_limited,
    gpu_launch_bound,
    gpu_memory_bound_decode,
    gpu_memory_pressure,
    gpu_throttling,
)
from analyzers.findings import Severity
from tests.analyzers.gpu._gpurun import H200_MEM
from tests.analyzers.gpu._rules_run import Gpu, gpu_rows, rules_of

GPU_RULES = [n for n in RULES if n.startswith("gpu_")]


def test_every_gpu_rule_is_registered() -> None:
    assert GPU_RULES == ["gpu_launch_bound", "gpu_memory_bound_decode",
                         "gpu_compute_bound_prefill", "gpu_throttling", "gpu_memory_pressure",
                         "gpu_idle_client_limited"]


def test_balanced_run_and_run_without_gpu_are_silent(tmp_path: Path) -> None:
    ctx = rules_of(tmp_path, Gpu(), stacks=0.5)
    assert ctx.gpu is not None
    assert [f.rule for f in find_bottlenecks(ctx) if f.rule.startswith("gpu_")] == []
    bare = rules_of(tmp_path, None, lag_ms=50, name="bare")
    assert bare.gpu is None
    assert [f.rule for f in find_bottlenecks(bare) if f.rule.startswith("gpu_")] == []


def test_launch_bound_from_nvml_contrast_and_hot_loop(tmp_path: Path) -> None:
    ctx = rules_of(tmp_path, Gpu(sm_util=15.0, occupancy=8.0, nvml=0.9, tensor=3.0),
                   stacks=0.97)
    f = gpu_launch_bound(ctx)
    assert f is not None
    assert f.severity == Severity.CRITICAL
    assert f.value("sm_busy_frac") == pytest.approx(0.15)
    assert f.value("nvml_util_frac") == pytest.approx(0.9)
    assert f.value("sm_occupancy_frac") == pytest.approx(0.08)
    assert f.value("model_thread_active_frac") == pytest.approx(0.97)
    assert f.value("hot_frame_1_self_frac") == pytest.approx(0.30)
    assert "_generation_step (continuous_batching.py:812)" in f.evidence[-2].detail
    assert f.value("in_flight_frac") > 0.95
    assert "CUDA graphs" in f.actions[0]  # no engine recorded: the generic words
    assert "_generation_step" in f.summary


def test_launch_bound_needs_a_confirmation_and_a_loaded_client(tmp_path: Path) -> None:
    # SMs 30 % busy, NVML agrees and no stacks: nothing says the host is the limit
    assert gpu_launch_bound(rules_of(tmp_path, Gpu(sm_util=30.0, nvml=0.35))) is None
    # SMs nearly idle (15 %) with requests in flight and a punctual client: host-bound on
    # its own, a warning that asks for the stacks (no NVML gap, no stacks to confirm it)
    f = gpu_launch_bound(rules_of(tmp_path, Gpu(sm_util=15.0, nvml=0.2), name="c"))
    assert f is not None
    assert f.severity == Severity.WARNING
    assert "--collect stacks" in f.summary
    # the stacks alone confirm it (WARNING: SM busy 30 % is above the critical line)
    f = gpu_launch_bound(rules_of(tmp_path, Gpu(sm_util=30.0, nvml=0.35), stacks=0.9,
                                  name="b"))
    assert f is not None
    assert f.severity == Severity.WARNING
    assert f.value("nvml_minus_sm_busy_frac") == pytest.approx(0.05)


def test_memory_bound_decode(tmp_path: Path) -> None:
    f = gpu_memory_bound_decode(rules_of(tmp_path, Gpu(dram=85.0, tensor=10.0)))
    assert f is not None
    assert f.severity == Severity.INFO
    assert f.value("dram_bw_peak_frac") == pytest.approx(0.85)
    assert f.value("dram_bw_bytes_per_s") == pytest.approx(0.85 * 4.8e12)
    assert f.value("tensor_active_frac") == pytest.approx(0.10)
    assert gpu_memory_bound_decode(rules_of(tmp_path, Gpu(dram=85.0, tensor=50.0),
                                            name="b")) is None


def test_compute_bound_prefill_in_prefill_windows(tmp_path: Path) -> None:
    ctx = rules_of(tmp_path, Gpu(tensor=10.0, tensor_prefill=80.0))
    f = gpu_compute_bound_prefill(ctx)
    assert f is not None
    # prefills run k·1000 .. k·1000 + 130 ms: the windows starting at k·1000 and k·1000 + 100
    assert f.value("tensor_active_prefill_heavy_frac") == pytest.approx(0.80)
    assert f.value("tensor_active_other_frac") == pytest.approx(0.10)
    assert f.value("prompt_median_tokens") == 1000
    assert f.value("client_ttft_mean_ms") == pytest.approx(100.0)
    # the same tensor activity spread evenly (40 %): not compute-bound
    assert gpu_compute_bound_prefill(rules_of(tmp_path, Gpu(tensor=40.0), name="b")) is None


def test_throttling_shares_and_clock_drop_from_the_rows(tmp_path: Path) -> None:
    g = Gpu(reasons=[0x4, 0x4, 0x4, 0x1, 0x0], clocks=[1400, 1400, 1400, 1980, 1980])
    ctx = rules_of(tmp_path, g)
    f = gpu_throttling(ctx)
    assert f is not None
    samples, _ = gpu_rows(g)
    inside = [s for s in samples if ctx.start_ns <= s.t_ns <= ctx.end_ns]
    capped = np.mean([s.clock_event_reasons == 0x4 for s in inside])
    assert f.value("throttled_frac") == pytest.approx(capped)
    assert f.value("power_cap_frac") == pytest.approx(capped)
    assert f.value("thermal_frac") == 0
    assert f.value("sm_clock_median_mhz") == 1400
    assert f.value("sm_clock_max_frac") == pytest.approx(1400 / 1980)
    assert f.severity == Severity.WARNING
    assert any("nvidia-smi -pl" in a for a in f.actions)
    # idle-flagged clocks are not throttling
    assert gpu_throttling(rules_of(tmp_path, Gpu(reasons=[0x1], clocks=[300]), name="b")) is None


def test_memory_pressure_is_info_without_engine_evidence(tmp_path: Path) -> None:
    f = gpu_memory_pressure(rules_of(tmp_path, Gpu(mem_frac=0.97)))
    assert f is not None
    assert f.severity == Severity.INFO
    assert f.value("mem_used_max_frac") == pytest.approx(0.97)
    assert f.value("mem_total_bytes") == H200_MEM
    assert "reserve" in f.summary
    assert gpu_memory_pressure(rules_of(tmp_path, Gpu(mem_frac=0.9), name="b")) is None


def test_idle_gpu_while_the_client_is_behind(tmp_path: Path) -> None:
    ctx = rules_of(tmp_path, Gpu(sm_util=5.0, nvml=0.1), lag_ms=50)
    f = gpu_idle_client_limited(ctx)
    assert f is not None
    assert f.value("sm_busy_frac") == pytest.approx(0.05)
    assert f.value("schedule_lag_p99_ms") == pytest.approx(50.0)
    assert any("--workers" in a for a in f.actions)
    assert gpu_launch_bound(ctx) is None
    # the same idle GPU with a punctual client: not this rule
    assert gpu_idle_client_limited(rules_of(tmp_path, Gpu(sm_util=5.0, nvml=0.1),
                                            name="b")) is None


@pytest.mark.parametrize("command", [["vllm", "serve", "m", "--enforce-eager"],
                                     ["transformers", "serve", "m", "--continuous-batching"]])
def test_launch_bound_actions_in_the_engines_flags(tmp_path: Path, command: list[str]) -> None:
    from servescope.engines.base import Knob
    from servescope.engines.registry import get_spec

    spec = get_spec(command[0])
    f = gpu_launch_bound(rules_of(tmp_path, Gpu(sm_util=15.0, nvml=0.9), command=command))
    assert f is not None
    assert f.actions[0].startswith(f"{spec.name}: {spec.tuning[Knob.CUDA_GRAPHS]}")
    if "--enforce-eager" in command:  # the flag the action says to remove is named
        assert f.actions[0].endswith("(this run has --enforce-eager)")
    assert f.actions[1].startswith(f"{spec.name}: {spec.tuning[Knob.MAX_BATCH]}")
    if Knob.ASYNC_SCHEDULING in spec.tuning:
        assert f.actions[2] == f"{spec.name}: {spec.tuning[Knob.ASYNC_SCHEDULING]}"
