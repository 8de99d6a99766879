"""The GPU figures table, the A/B GPU table and the stacks section of the HTML report,
against the GPU run the test writes (tests/reports/_gpu_runs.py): the numbers are the
analysis' figures, the hot function is listed with its shares, links are relative paths
inside the run, and every engine string is escaped."""

from __future__ import annotations

import html
import re
from dataclasses import replace

import pytest

from analyzers.compare import compare_runs
from analyzers.report_inputs import RunInputs, gather_run
from reports.html import ab_figures, ab_report_html, run_report_html
from reports.html.sections_gpu import stacks_section
from tests.reports import _gpu_runs as G
from tests.reports._html_runs import known_run


def _rows(page: str, cls: str) -> dict[str, list[str]]:
    """The rows of the tables of class ``cls``: first cell → the others, as plain text."""
    bodies = re.findall(rf'<table class="[^"]*\b{cls}\b[^"]*">(.*?)</table>', page, re.S)
    assert bodies, cls
    out = {}
    for row in re.findall(r"<tr>(.*?)</tr>", "".join(bodies), re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
                 for c in re.findall(r"<t[dh]>(.*?)</t[dh]>", row, re.S)]
        out[cells[0]] = cells[1:]
    return out


@pytest.fixture(scope="module")
def gpu_inputs(tmp_path_factory) -> RunInputs:
    return gather_run(G.gpu_run(tmp_path_factory.mktemp("sec")), n_resamples=100)


def test_gpu_figures_table_shows_the_window_figures(gpu_inputs):
    f = gpu_inputs.gpu_figures
    assert f is not None
    g = f.gpu(0)
    rows = _rows(run_report_html(gpu_inputs), "gpu-figures")
    assert rows[""] == ["GPU 0 NVIDIA H200"]  # one GPU: no "all GPUs" column
    # the steady window holds both phases: SM busy between them, as the analysis says
    assert G.SM_UTIL[0] / 100 < g.sm_busy_frac < G.SM_UTIL[1] / 100
    assert rows["SM busy (GPM)"] == [f"{g.sm_busy_frac * 100:.1f} %"]
    assert rows["DRAM bandwidth"] == [f"{g.dram_bw_bytes_per_s / 1e9:,.0f} GB/s"]
    assert rows["DRAM % of peak"] == [f"{g.dram_bw_peak_frac * 100:.1f} % of 4,800 GB/s"]
    assert rows["energy per output token"] == [f"{g.energy_per_output_token_j:,.3f} J"]
    assert rows["energy per request"] == [f"{g.energy_per_request_j:,.1f} J"]
    assert rows["throttled (power/thermal cap)"][0].startswith(
        f"{g.throttled_frac * 100:.1f} % (sw_power_cap")
    assert "gpu_idle" not in rows["throttled (power/thermal cap)"][0]
    assert rows["NVML samples"] == [f"{g.samples:,} every 10 ms"]


def test_stacks_section_lists_hot_functions_links_and_hangs(gpu_inputs):
    page = run_report_html(gpu_inputs)
    hot = _rows(page, "hot")
    # the engine core's busiest thread: execute_model at 250 of 392 samples self
    assert hot[G.HOT_FUNCTION] == ["vllm/v1/worker/gpu_model_runner.py:1500",
                                   f"{250 / 392 * 100:.1f} %", f"{380 / 392 * 100:.1f} %"]
    assert hot[G.HOSTILE_FUNCTION][0] == f"/x/{G.HOSTILE}.py:7"
    assert 'href="stacks/engine_core-1234.speedscope.json"' in page
    assert 'href="stacks/hang-1/engine_core-1234.txt"' in page
    assert "Busiest thread: <b>&lt;script&gt;alert(1)&lt;/script&gt;</b>" in page
    # the page is saved elsewhere: links lead back into the run directory
    elsewhere = gpu_inputs.path + "/../out/deeper"
    moved = run_report_html(gpu_inputs, links_from=elsewhere)
    assert f'href="../../{_dir_name(gpu_inputs)}/stacks/engine_core-1234.speedscope.json"' in moved


def _dir_name(r: RunInputs) -> str:
    return r.path.rstrip("/").rsplit("/", 1)[-1]


def test_every_engine_string_is_escaped(gpu_inputs):
    page = run_report_html(gpu_inputs)
    body = page[page.index("<main>"):page.index('<script type="application/json"')]
    assert "<script" not in body
    assert "<img" not in body
    assert html.escape(G.HOSTILE, quote=True) in body  # shown, as text
    assert html.escape(G.HOSTILE_FUNCTION, quote=True) in body


def test_file_names_that_are_not_plain_paths_in_the_run_are_not_links(gpu_inputs):
    s = gpu_inputs.stacks
    assert s is not None
    bad = replace(s, processes=(
        replace(s.processes[0], speedscope_file="javascript:alert(1)"),
        replace(s.processes[1], speedscope_file="../../etc/passwd")))
    out = stacks_section(bad, gpu_inputs.path, gpu_inputs.origin_ns)
    assert 'href="javascript%3Aalert%281%29"' in out  # a relative file name, not a scheme
    assert "passwd</a>" not in out
    assert "href=\"javascript:" not in out


def test_run_without_gpu_or_stacks_has_no_such_sections(tmp_path):
    r = gather_run(known_run(tmp_path, engine=False), n_resamples=50)
    assert r.gpu_figures is None
    assert r.stacks is None
    page = run_report_html(r)
    for text in ("GPU in the same window", "Engine CPU stacks", "GPU, A → B", "gpu-figures"):
        assert text not in page
    # GPU data but no stacks: the GPU table, no stacks section
    g = gather_run(G.gpu_run(tmp_path, "nostacks", stacks=False), n_resamples=50)
    page = run_report_html(g)
    assert "GPU in the same window" in page
    assert "Engine CPU stacks" not in page


def test_ab_report_puts_both_runs_gpu_figures_side_by_side(tmp_path):
    a_run = G.gpu_run(tmp_path, "a", stacks=False)
    b_run = G.gpu_run(tmp_path, "b", gpus=2, stacks=False)
    a, b = gather_run(a_run, n_resamples=50), gather_run(b_run, n_resamples=50)
    assert a.gpu_figures is not None
    assert b.gpu_figures is not None
    c_ab = compare_runs(a_run.path, b_run.path)
    page = ab_report_html(a, b, c_ab)
    rows = _rows(page, "gpu-ab")
    x, y = a.gpu_figures.combined, b.gpu_figures.combined
    assert rows["SM busy (GPM)"] == [f"{x.sm_busy_frac * 100:.1f} %",
                                     f"{y.sm_busy_frac * 100:.1f} %",
                                     f"{(y.sm_busy_frac - x.sm_busy_frac) * 100:+.1f} points"]
    # B has two GPUs: twice the energy of the same load
    assert rows["energy"][2] == f"{(y.energy_j / x.energy_j - 1) * 100:+.1f} %"
    assert y.energy_j == pytest.approx(2 * x.energy_j, rel=1e-6)
    # the A/B timeline carries both runs' GPU traces
    timeline = ab_figures(a, b, c_ab)["timeline"]
    assert timeline is not None
    names = {t["name"] for t in timeline["data"]}
    assert {"A · a SM busy", "B · b GPU 0 SM busy", "B · b GPU 1 SM busy"} <= names
    # one run without GPU data: its column is "–"
    c = gather_run(known_run(tmp_path, "c", engine=False), n_resamples=50)
    page = ab_report_html(a, c, compare_runs(a_run.path, c.path))
    assert _rows(page, "gpu-ab")["SM busy (GPM)"][1:] == ["–", ""]


def test_report_command_saved_elsewhere_links_back_into_the_run(tmp_path):
    """``servescope report RUN -o OTHER/page.html``: the links start where the page is."""
    from profiler.commands_report import report_command

    run = G.gpu_run(tmp_path)
    out = tmp_path / "out" / "deeper" / "page.html"
    out.parent.mkdir(parents=True)
    assert report_command(run.path, None, out) == 0
    page = out.read_text()
    href = f"../../{run.path.name}/stacks/engine_core-1234.speedscope.json"
    assert f'href="{href}"' in page
    assert (out.parent / href).resolve().is_file()
