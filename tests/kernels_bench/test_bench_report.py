"""The bench run's HTML report, checked as data: one figure per bench, a line per
implementation at the medians written, the peaks as dashed lines, names escaped."""

from __future__ import annotations

import pytest

from analyzers.bandwidth import read_bandwidth
from kernels_bench.formulas import datasheet_peak
from kernels_bench.peaks import DevicePeaks
from kernels_bench.results import BenchRun, make_sample, write_bench_run
from profiler.commands_report import build_report
from reports.html.sections_bench import bench_figures


@pytest.fixture
def run_dir(tmp_path):
    peaks = DevicePeaks("NVIDIA H200", 4.814304e12, 3201, 6016, datasheet_peak("NVIDIA H200"))
    run = BenchRun("hbm")
    for impl in ("triton", "<b>evil</b>"):
        for size, t in ((1 << 20, 1000), (1 << 30, 500_000)):
            times = [t, t, t]
            run.add(make_sample("hbm_copy", impl, size_bytes=size, moved_bytes=2 * size,
                                times_ns=times, peaks=peaks, dtype="float32"), times)
    return write_bench_run(tmp_path / "r", run, command_line=["x"], settings={})


def test_figures_carry_medians_and_peaks(run_dir):
    t = read_bandwidth(run_dir)
    assert t is not None
    (fig,) = bench_figures(t)
    lines = {d["name"]: d for d in fig["data"]}
    tri = lines["triton"]
    assert tri["x"] == [1 << 20, 1 << 30]
    assert tri["y"] == pytest.approx([2 * (1 << 20) / 1e-6 / 1e9,
                                      2 * (1 << 30) / 5e-4 / 1e9], rel=1e-3)
    assert "&lt;b&gt;evil&lt;/b&gt;" in lines  # plotly would render raw tags
    peak = lines["NVML-derived peak 4,814 GB/s"]
    assert peak["y"] == [4814.0, 4814.0]
    assert peak["line"]["dash"] == "dash"
    assert lines["datasheet peak 4,800 GB/s"]["y"] == [4800.0, 4800.0]
    assert fig["layout"]["xaxis"]["type"] == "log"


def test_build_report_takes_the_bench_page(run_dir):
    html = build_report(run_dir)
    assert "servescope bench report: hbm" in html
    assert "<b>evil</b>" not in html
    assert "&lt;b&gt;evil&lt;/b&gt;" in html
    assert "% NVML peak" in html
