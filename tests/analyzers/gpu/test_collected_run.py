"""The analysis of a run the real GPU collector wrote (``run --collect gpu`` against the fake
engine and the fake H200 of tests/fakes/nvml, in its copy phase): the files are read in the
collector's own schema, and the figures come out of its rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.collectors.gpu._support import run_with_fake_h200

pytestmark = pytest.mark.timeout(120)


def test_figures_of_a_collected_run(tmp_path: Path) -> None:
    from analyzers.context import RunContext

    out = tmp_path / "run"
    code = run_with_fake_h200(out, requests=40, concurrency=4, output_len="fixed:64")
    assert code == 0
    ctx = RunContext(out)
    figs = ctx.analysis(n_resamples=20).gpu
    assert figs is not None
    g = figs.gpu(0)
    samples = pd.read_parquet(out / "gpu" / "samples.parquet")
    inside = samples[(samples["t_ns"] >= figs.start_ns) & (samples["t_ns"] <= figs.end_ns)]
    assert g.samples == len(inside) > 0
    assert g.nvml_util_frac == pytest.approx(inside["util_gpu_frac"].mean())
    assert g.name == "NVIDIA H200"
    assert g.peak_dram_bytes_per_s == pytest.approx(4.81e12, rel=1e-3)
    gpm = pd.read_parquet(out / "gpu" / "gpm.parquet")
    assert g.gpm_windows > 0
    assert 0 <= g.sm_busy_frac <= 1
    dram = gpm[gpm["metric"] == "dram_bw_util"]
    assert dram["value"].min() / 100 <= g.dram_bw_peak_frac <= dram["value"].max() / 100
    assert g.energy_j > 0
