"""The GPU figures of a real H200 recording (tests/analyzers/gpu/data/h200_phases: the real
collector through idle, copy, GEMM and tiny-kernel phases): each phase reads as what it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyzers.gpu.figures import GpuWindowFigures
from analyzers.gpu.load import read_gpu
from analyzers.gpu.window import gpu_figures

DATA = Path(__file__).parent / "data" / "h200_phases"
MARGIN_NS = 300_000_000  # leave out the GPM windows that straddle a phase switch


@pytest.fixture(scope="module")
def phases() -> dict[str, GpuWindowFigures]:
    tables = read_gpu(DATA)
    assert tables is not None
    spans = json.loads((DATA / "phases.json").read_text())
    return {name: gpu_figures(tables, a + MARGIN_NS, b - MARGIN_NS).gpu(0)
            for name, (a, b) in spans.items()}


def test_copy_is_bandwidth_bound_and_gemm_compute_bound(
        phases: dict[str, GpuWindowFigures]) -> None:
    copy, gemm = phases["copy"], phases["gemm"]
    assert copy.dram_bw_peak_frac > 0.8  # 87.8 % recorded: 4.23 TB/s of 4.81
    assert copy.dram_bw_bytes_per_s == pytest.approx(copy.dram_bw_peak_frac * 4.814304e12)
    assert copy.tensor_active_frac < 0.01
    assert gemm.tensor_active_frac > 0.9  # 92.7 %
    assert gemm.dram_bw_peak_frac < copy.dram_bw_peak_frac / 2  # 17.4 %
    assert gemm.sm_occupancy_frac < copy.sm_occupancy_frac


def test_gemm_runs_on_the_power_cap_with_a_clock_drop(
        phases: dict[str, GpuWindowFigures]) -> None:
    gemm = phases["gemm"]
    shares = {s.reason: s.time_frac for s in gemm.throttle}
    assert shares["sw_power_cap"] > 0.9
    assert gemm.throttled_frac > 0.9
    assert gemm.sm_clock_max_frac < 0.85  # 1515 of 1980 MHz recorded
    assert phases["copy"].throttled_frac == 0
    assert phases["copy"].sm_clock_max_frac == 1


def test_tiny_kernels_read_busy_on_nvml_and_idle_on_gpm(
        phases: dict[str, GpuWindowFigures]) -> None:
    tiny = phases["tiny"]
    assert tiny.nvml_util_frac > 0.15  # 23 % recorded
    assert tiny.sm_busy_frac < 0.01  # 0.0 %
    assert phases["idle"].nvml_util_frac == 0


def test_energy_from_the_counter_not_from_lagging_power(
        phases: dict[str, GpuWindowFigures]) -> None:
    for f in phases.values():
        seconds = (f.end_ns - f.start_ns) / 1e9
        assert 50 < f.energy_j / seconds < 750  # a plausible H200 draw
        assert f.samples >= 9 * seconds
        assert f.sample_period_median_s == pytest.approx(0.1, abs=0.005)
    # NVML's power is a ~1 s average: right after the GEMM it still reads high, the counter not
    tiny = phases["tiny"]
    assert tiny.power_mean_w > 1.2 * tiny.energy_j / ((tiny.end_ns - tiny.start_ns) / 1e9)
