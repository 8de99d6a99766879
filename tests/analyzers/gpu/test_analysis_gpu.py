"""The analysis carries the GPU figures over the same steady window as its latencies."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzers.context import RunContext
from analyzers.run_analysis import analyze_run
from tests.analyzers._rundir import write_run
from tests.analyzers.gpu._gpurun import h200, write_gpu
from tests.analyzers.gpu._rules_run import Gpu, client, gpu_rows


def test_gpu_figures_share_the_steady_window(tmp_path: Path) -> None:
    run = write_run(tmp_path, client())
    samples, gpm = gpu_rows(Gpu(sm_util=55.0))
    write_gpu(run.path, [h200()], samples, gpm)
    ctx = RunContext(run)
    a = analyze_run(ctx, n_resamples=50)
    assert a.gpu is not None
    assert a.gpu is ctx.gpu_window  # computed once, shared
    assert (a.gpu.start_ns, a.gpu.end_ns) == (a.steady.start_ns, a.steady.end_ns)
    assert a.gpu.window_note == "steady state"
    g = a.gpu.combined
    assert g.sm_busy_frac == pytest.approx(0.55)
    # 300 W from the counter (30 J per 100 ms) over the window
    assert g.energy_j == pytest.approx(300.0 * (a.steady.end_ns - a.steady.start_ns) / 1e9)
    # the tokens behind the steady throughput are the ones energy is divided by
    window_s = (a.steady.end_ns - a.steady.start_ns) / 1e9
    assert g.output_tokens == pytest.approx(a.steady_output_token_throughput_per_s * window_s)
    assert g.energy_per_output_token_j == pytest.approx(g.energy_j / g.output_tokens)


def test_analysis_without_gpu(tmp_path: Path) -> None:
    ctx = RunContext(write_run(tmp_path, client()))
    assert analyze_run(ctx, n_resamples=50).gpu is None
    assert ctx.gpu is None
    assert ctx.stacks is None
