"""`servescope analyze` on a GPU run: the GPU figures of the steady window are printed beside
the percentiles and exported under "gpu" in --json, equal to the analysis' own figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console

from analyzers.context import RunContext
from profiler.commands import analyze_command
from reports.analysis_view import print_analysis
from tests.reports import _gpu_runs as G


def test_analyze_prints_and_exports_the_gpu_figures(tmp_path: Path) -> None:
    run = G.gpu_run(tmp_path)
    figures = RunContext.of(run.path).analysis().gpu
    assert figures is not None
    out = tmp_path / "a.json"
    assert analyze_command(run.path, None, out) == 0
    data = json.loads(out.read_text())
    gpu0 = data["gpu"]["gpus"][0]
    assert gpu0["gpu_index"] == figures.gpus[0].gpu_index
    assert math.isclose(gpu0["sm_busy_frac"], figures.gpus[0].sm_busy_frac)
    assert math.isclose(gpu0["energy_j"], figures.gpus[0].energy_j)
    console = Console(record=True, width=250)
    print_analysis(console, RunContext.of(run.path).analysis())
    text = console.export_text()
    assert "GPU over the same window" in text
    assert f"{figures.gpus[0].sm_busy_frac:.0%}" in text


def test_a_run_without_gpu_data_exports_null(tmp_path: Path) -> None:
    run = G.gpu_run(tmp_path, stacks=False)
    for p in (run.path / "gpu").iterdir():
        p.unlink()
    (run.path / "gpu").rmdir()
    out = tmp_path / "a.json"
    assert analyze_command(run.path, None, out) == 0
    assert json.loads(out.read_text())["gpu"] is None
