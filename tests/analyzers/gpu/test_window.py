"""GPU figures over a window, against rows whose right answers the test computes by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analyzers.gpu.load import read_gpu
from analyzers.gpu.window import gpu_figures, interpolated_energy_j
from servescope.records.gpu import GpmSample, GpuSample
from tests.analyzers.gpu._gpurun import gpm_rows, h200, sample, write_gpu

S = 1_000_000_000
T0 = 2**53  # a large monotonic origin, as a real clock gives
MS100 = S // 10


def _samples(index: int = 0, counter_w: float = 400.0) -> list[GpuSample]:
    """Every 100 ms for 10 s; the energy counter grows at counter_w while power_w reads 300
    (so averaging power would give a different energy); 60 % of samples (k % 5 < 3) are on
    the power cap at 1500 MHz, the others idle-flagged at 1980 MHz."""
    out = []
    for k in range(101):
        capped = k % 5 < 3
        out.append(sample(T0 + k * MS100, index, energy_mj=round(counter_w * k * 100),
                          power_w=300.0, util_gpu_frac=0.9,
                          sm_clock_mhz=1500 if capped else 1980,
                          clock_event_reasons=0x4 if capped else 0x1,
                          mem_used_bytes=(10 + k) * 2**30))
    return out


def _gpm(index: int = 0) -> list[GpmSample]:
    rows: list[GpmSample] = []
    for k in range(10):  # 1-s windows: sm_util 10k %, dram 70 %, tensor 5 %
        rows += gpm_rows(T0 + k * S, T0 + (k + 1) * S, index, sm_util=10.0 * k,
                         sm_occupancy=5.0 * k, dram_bw_util=70.0, any_tensor_util=5.0)
    return rows


def _ok(*rows: tuple[int, int]) -> pd.DataFrame:
    return pd.DataFrame({"t_last_ns": [t for t, _ in rows], "output_tokens": [n for _, n in rows]})


def test_one_gpu_figures_from_raw_rows(tmp_path: Path) -> None:
    write_gpu(tmp_path, [h200()], _samples(), _gpm())
    tables = read_gpu(tmp_path)
    assert tables is not None
    t0, t1 = T0 + 25 * MS100, T0 + 55 * MS100  # 2.5 s .. 5.5 s
    ok = _ok((t0 - 1, 1000), (t0, 100), (t0 + S, 200), (t1, 300), (t1 + 1, 1000))
    f = gpu_figures(tables, t0, t1, ok, "steady state").gpu(0)
    # GPM windows [2,3] .. [5,6] overlap by 0.5, 1, 1, 0.5 s: (20·.5 + 30 + 40 + 50·.5) / 3
    assert f.sm_busy_frac == pytest.approx(0.35)
    assert f.sm_occupancy_frac == pytest.approx(0.175)
    assert f.gpm_windows == 4
    assert f.gpm_period_median_s == pytest.approx(1.0)
    assert f.dram_bw_peak_frac == pytest.approx(0.70)
    assert f.dram_bw_bytes_per_s == pytest.approx(0.70 * 4.8e12)
    assert f.tensor_active_frac == pytest.approx(0.05)
    assert f.nvml_util_frac == pytest.approx(0.9)
    # the counter, not power: 400 W × 3 s (power_w's mean of 300 W would say 900 J)
    assert f.energy_j == pytest.approx(1200.0)
    assert f.power_mean_w == pytest.approx(300.0)
    assert f.requests_completed == 3
    assert f.output_tokens == 600
    assert f.energy_per_output_token_j == pytest.approx(2.0)
    assert f.energy_per_request_j == pytest.approx(400.0)
    # samples 25..55 inside: 31, of which k % 5 < 3 on the cap
    capped = sum(1 for k in range(25, 56) if k % 5 < 3)
    assert f.samples == 31
    assert f.sample_period_median_s == pytest.approx(0.1)
    assert f.throttled_frac == pytest.approx(capped / 31)
    shares = {s.reason: s.time_frac for s in f.throttle}
    assert shares == pytest.approx({"sw_power_cap": capped / 31, "gpu_idle": 1 - capped / 31})
    assert f.sm_clock_median_mhz == 1500
    assert f.sm_clock_max_frac == pytest.approx(1500 / 1980)
    assert f.mem_used_max_bytes == 65 * 2**30
    assert f.mem_used_max_frac == pytest.approx(65 * 2**30 / 150_754_820_096)


def test_energy_interpolates_between_readings_and_ignores_a_reset() -> None:
    import numpy as np

    t = np.array([0, 1000, 2000, 3000], dtype=np.int64)
    e = np.array([0.0, 1000.0, 5.0, 1005.0])  # a reset between 1000 and 2000 ns
    # [500, 2500]: 500 mJ before the reset, 0 across it, 500 after
    assert interpolated_energy_j(t, e, 500, 2500) == pytest.approx(1.0)
    assert interpolated_energy_j(t, e, -100, 10_000) == pytest.approx(2.0)  # clipped
    assert math.isnan(interpolated_energy_j(t[:1], e[:1], 0, 10))


def test_two_gpus_combine(tmp_path: Path) -> None:
    write_gpu(tmp_path, [h200(0), h200(1, peak_dram_bytes_per_s=2.4e12)],
              _samples(0) + _samples(1, counter_w=200.0), _gpm(0) + [
                  r for r in _gpm(1) if r.metric != "dram_bw_util"] + [
                  GpmSample(T0, T0 + 10 * S, 1, None, 10, "dram_bw_util", 50.0)])
    tables = read_gpu(tmp_path)
    assert tables is not None
    figs = gpu_figures(tables, T0 + 2 * S, T0 + 4 * S)
    c = figs.combined
    assert [g.gpu_index for g in figs.gpus] == [0, 1]
    assert c.gpu_index is None
    assert c.energy_j == pytest.approx(800 + 400)
    assert c.dram_bw_bytes_per_s == pytest.approx(0.7 * 4.8e12 + 0.5 * 2.4e12)
    assert c.dram_bw_peak_frac == pytest.approx((0.7 * 4.8e12 + 0.5 * 2.4e12) / 7.2e12)
    assert c.sm_busy_frac == pytest.approx(0.25)  # both GPUs 25 % over [2 s, 4 s]
    assert c.power_mean_w == pytest.approx(600.0)
    assert math.isnan(c.energy_per_output_token_j)  # no client records given
    with pytest.raises(KeyError, match="watched 0, 1"):
        figs.gpu(7)


def test_no_gpu_directory_is_none(tmp_path: Path) -> None:
    assert read_gpu(tmp_path) is None


def test_missing_optional_columns_and_no_gpm(tmp_path: Path) -> None:
    write_gpu(tmp_path, [h200(gpm_supported=False)], [])
    rows = [{"t_ns": T0 + k * MS100, "gpu_index": 0, "util_gpu_frac": 0.4} for k in range(11)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "gpu" / "samples.parquet")
    tables = read_gpu(tmp_path)
    assert tables is not None
    f = gpu_figures(tables, T0, T0 + S).gpu(0)
    assert f.nvml_util_frac == pytest.approx(0.4)
    assert f.samples == 11
    for name in ("sm_busy_frac", "energy_j", "dram_bw_bytes_per_s", "power_mean_w",
                 "sm_clock_median_mhz", "throttled_frac", "mem_used_max_bytes"):
        assert math.isnan(getattr(f, name)), name
    assert f.throttle == ()
    assert f.gpm_windows == 0


def test_mig_rows_do_not_mix_with_the_whole_gpu(tmp_path: Path) -> None:
    mig = [GpmSample(T0, T0 + S, 0, 3, 2, "sm_util", 99.0)]
    write_gpu(tmp_path, [h200()], _samples(), _gpm() + mig)
    tables = read_gpu(tmp_path)
    assert tables is not None
    assert gpu_figures(tables, T0, T0 + S).gpu(0).sm_busy_frac == pytest.approx(0.0)


def test_an_unreadable_file_is_a_warning_and_the_rest_is_used(tmp_path: Path) -> None:
    write_gpu(tmp_path, [h200()], _samples(), _gpm())
    (tmp_path / "gpu" / "gpm.parquet").write_bytes(b"not parquet")
    tables = read_gpu(tmp_path)
    assert tables is not None
    assert len(tables.warnings) == 1
    assert "gpm.parquet" in tables.warnings[0]
    figs = gpu_figures(tables, T0, T0 + S)
    assert figs.warnings == tables.warnings
    assert math.isnan(figs.gpu(0).sm_busy_frac)
    assert figs.gpu(0).nvml_util_frac == pytest.approx(0.9)
