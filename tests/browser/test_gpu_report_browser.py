"""A GPU run's report in headless Chromium: the GPU panels drawn by plotly with their data,
the throttled period shaded, the stacks section listing the hot function with working links,
and hostile engine strings (thread, function, process title) shown as text, never run."""

from __future__ import annotations

from pathlib import Path

import pytest

from profiler.commands_report import write_run_report
from tests.browser.test_report_browser import _assert_every_plot_drawn, _open
from tests.reports import _gpu_runs as G

pytestmark = pytest.mark.browser

GPU_TRACES = ("GPU 0 SM busy", "GPU 0 SM occupancy", "GPU 0 NVML util", "GPU 0 DRAM BW",
              "GPU 0 tensor active", "GPU 0 power", "GPU 0 SM clock", "GPU 0 memory used",
              "GPU 1 SM busy")


def test_gpu_report_draws_gpu_panels_and_stacks(browser, artifacts, tmp_path):
    run = G.gpu_run(tmp_path, gpus=2)
    o = _open(browser, write_run_report(run.path), artifacts, "gpu-report")
    _assert_every_plot_drawn(o, {"fig-cdf", "fig-timeline"})  # no engine histograms
    drawn = o.page.evaluate("""() => {
        const el = document.getElementById('fig-timeline');
        const traces = {};
        for (const t of el._fullData) traces[t.name] = {n: (t.y || []).filter(
            v => v !== null).length, axis: t.yaxis, visible: t.visible};
        const titles = Object.keys(el._fullLayout).filter(k => k.startsWith('yaxis'))
            .map(k => el._fullLayout[k].title.text);
        const red = el._fullLayout.shapes.filter(s => s.fillcolor === '#d62728').length;
        const paths = el.querySelectorAll('g.scatterlayer g.trace path.js-line').length;
        return {traces, titles, red, paths};
    }""")
    for name in GPU_TRACES:
        t = drawn["traces"][name]
        assert t["n"] >= 50, (name, t)  # ~190 samples in the window each
        assert t["visible"] is True
    assert {"SM busy / occupancy", "DRAM BW (GB/s)", "tensor active", "power (W)",
            "SM clock (MHz)", "GPU memory (GiB)"} <= set(drawn["titles"])
    assert drawn["red"] == 2  # the capped period in the power and the clock panels
    assert drawn["paths"] >= len(GPU_TRACES)
    main = o.page.inner_text("main")
    assert "GPU in the same window" in main
    assert "Engine CPU stacks" in main
    hot = o.page.inner_text("table.hot >> nth=1")
    assert G.HOT_FUNCTION in hot
    assert "gpu_model_runner.py:1500" in hot
    # hostile names are text: the thread name, the function name, the process title
    assert G.HOSTILE in main
    assert G.HOSTILE_FUNCTION in hot
    assert o.page.evaluate("document.querySelectorAll('main script, main img').length") == 0
    assert o.dialogs == []
    # the links resolve to the run's files
    for href in o.page.evaluate("""() => Array.from(document.querySelectorAll('main a'))
            .map(a => a.href).filter(h => h.startsWith('file:'))"""):
        assert Path(href.removeprefix("file://")).is_file(), href
    o.page.close()


def test_a_real_h200_run_report_draws_its_gpu_panels(browser, artifacts, tmp_path):
    """The report of a real run (transformers serve on an H200, tests/data/gpu_runs)."""
    import shutil

    run = tmp_path / "transformers_small"
    shutil.copytree(Path(__file__).parents[1] / "data" / "gpu_runs" / "transformers_small", run)
    o = _open(browser, write_run_report(run), artifacts, "gpu-real-report")
    drawn = o.page.evaluate("""() => {
        const el = document.getElementById('fig-timeline');
        const traces = {};
        for (const t of el._fullData) traces[t.name] = (t.y || []).filter(
            v => v !== null).length;
        return traces;
    }""")
    for name in GPU_TRACES[:-1]:  # one GPU: the traces are not named by GPU
        assert drawn[name.removeprefix("GPU 0 ")] >= 50, (name, drawn)  # 10 Hz, ~40 s
    main = o.page.inner_text("main")
    assert "Engine CPU stacks" in main
    assert "sdpa_attention_paged_forward" in main
    assert "_run_generation_loop" in main
