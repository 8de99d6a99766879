"""Two real runs on an NVIDIA H200 (2026-12-04, benchmarks/gpu/issue10_runs.sh):
``servescope run --collect metrics,gpu,stacks`` around ``transformers serve MODEL
--continuous-batching`` under 64 streams (256 requests, 64 prompt and 128 output tokens), with
a 94 M-parameter and a 1.25 B-parameter random-weight Llama. Committed as recorded (report.html
left out), read here as a laptop would: no GPU, no engine."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analyzers.context import RunContext
from analyzers.findings import Severity

RUNS = Path(__file__).parents[2] / "data" / "gpu_runs"


@pytest.fixture(scope="module")
def small() -> RunContext:
    return RunContext.of(RUNS / "transformers_small")


@pytest.fixture(scope="module")
def large() -> RunContext:
    return RunContext.of(RUNS / "transformers_large")


def test_samples_are_real_10_hz_with_gpm_and_threads(small: RunContext) -> None:
    gpu = small.gpu
    assert gpu is not None
    t = gpu.samples["t_ns"].to_numpy()
    spacing_ms = pd.Series(t).diff().dropna() / 1e6
    assert spacing_ms.median() == pytest.approx(100.0, abs=1.0)  # >= 10 Hz, real spacing
    assert spacing_ms.quantile(0.99) < 110
    assert {"sm_util", "sm_occupancy", "dram_bw_util", "any_tensor_util"} <= set(
        gpu.gpm["metric"])
    stacks = small.stacks
    assert stacks is not None
    assert stacks.model_thread is not None
    assert stacks.model_thread.thread_name == "Thread-3 (_run_generation_loop)"
    assert stacks.model_thread.role == "engine_core"


def test_the_engine_is_named_launch_bound_with_its_evidence(small: RunContext,
                                                            large: RunContext) -> None:
    for ctx in (small, large):
        (f,) = [f for f in ctx.analysis().findings if f.rule == "gpu_launch_bound"]
        assert f.severity == Severity.CRITICAL
        assert f.value("sm_busy_frac") < 0.05
        assert f.value("model_thread_active_frac") > 0.7
        assert "_run_generation_loop" in f.summary
        assert "sdpa_attention_paged_forward" in f.summary  # the hot frame
        assert f.actions[0].startswith("transformers: --cb-use-cuda-graph")


def test_the_larger_model_moves_the_evidence_the_right_way(small: RunContext,
                                                           large: RunContext) -> None:
    a, b = small.gpu_window, large.gpu_window
    assert a is not None
    assert b is not None
    ga, gb = a.combined, b.combined
    # more work per step on the GPU: SMs busier, more bytes read, more energy per token
    assert gb.sm_busy_frac > 1.5 * ga.sm_busy_frac
    assert gb.dram_bw_bytes_per_s > 3 * ga.dram_bw_bytes_per_s
    assert gb.energy_per_output_token_j > 1.5 * ga.energy_per_output_token_j
    # ... and the host loop is busier still: the step is still host-bound
    assert large.stacks is not None
    assert small.stacks is not None
    assert large.stacks.model_thread is not None
    assert small.stacks.model_thread is not None
    assert large.stacks.model_thread.active_frac > small.stacks.model_thread.active_frac
