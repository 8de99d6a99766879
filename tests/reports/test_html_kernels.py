"""The HTML report's kernels section, on run directories whose ``kernels/`` tables were
written by the real ingestion (``ingest_traces``) from the real vLLM-CPU capture and from a
GPU-style trace the test makes: step counts, busy time and top kernels equal a pandas
computation on the ingested tables; engine names are escaped; no section without kernels."""

from __future__ import annotations

import html
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from analyzers.compare import compare_runs
from analyzers.report_inputs import gather_run
from collectors.kernels import ingest_traces
from reports.html import ab_figures, ab_report_html, run_figures, run_report_html
from tests.analyzers.kernels._events import VLLM_CPU_TRACE, Trace
from tests.collectors.kernels._traces import write_trace
from tests.reports._html_runs import known_run

PREFILL = "execute_context_1(64)_generation_0(0)"
DECODE = "execute_context_0(0)_generation_4(4)"
HOSTILE = "<script>alert('k')</script>_gemv"
_CATS = {"kernel": "kernel", "memcpy": "gpu_memcpy", "memset": "gpu_memset",
         "runtime": "cuda_runtime", "cpu_op": "cpu_op", "annotation": "user_annotation"}


def gpu_trace(gemm_ns: int = 40_000) -> Trace:
    """One prefill step (2 ms) and six decode steps (1 ms each, 2 ms apart): a GEMM of
    ``gemm_ns``, a flash-attention kernel of 20 µs, the hostile-named kernel of 6 µs and 25
    elementwise kernels of 3 µs each 30 µs apart (a launch-bound decode step)."""
    t = Trace()
    t.step(PREFILL, 0, 2_000_000)
    t.launch("sm90_xmma_gemm_bf16", 10_000, 5_000, 20_000, 900_000)
    t.launch("flash_fwd_kernel", 20_000, 5_000, 930_000, 300_000)
    for k in range(6):
        t0 = 3_000_000 + k * 2_000_000
        t.step(DECODE, t0, 1_000_000)
        t.launch("sm90_xmma_gemm_bf16", t0 + 1_000, 4_000, t0 + 10_000, gemm_ns)
        t.launch("flash_fwd_kernel", t0 + 6_000, 4_000, t0 + 60_000, 20_000)
        t.launch(HOSTILE, t0 + 11_000, 4_000, t0 + 90_000, 6_000)
        for i in range(25):
            launch = t0 + 120_000 + i * 30_000
            t.launch(f"elementwise_{i % 2}", launch, 9_000, launch + 12_000, 3_000)
    return t


def chrome_events(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's rows as Chrome-trace "X" events (times in µs), as kineto writes them."""
    out = []
    for rec in frame.to_dict("records"):
        r = {str(k): v for k, v in rec.items()}
        gpu = r["kind"] in ("kernel", "memcpy", "memset")
        corr = int(r["correlation_id"])
        args: dict[str, Any] = {"correlation": corr} if corr >= 0 else {}
        if gpu:
            args |= {"device": int(r["device"]), "stream": int(r["stream"])}
        out.append({"ph": "X", "cat": _CATS[r["kind"]], "name": r["name"],
                    "ts": int(r["t_start_ns"]) / 1000, "dur": int(r["dur_ns"]) / 1000,
                    "pid": args["device"] if gpu else 4242,
                    "tid": args["stream"] if gpu else 4242, "args": args})
    return out


def kernel_run(root: Path, name: str, trace_path: Path | None = None,
               trace: Trace | None = None) -> Path:
    """A run (vLLM named as its engine) with a trace ingested into its kernels/ tables."""
    run = known_run(root, name)
    if trace is not None:
        trace_path = write_trace(root / f"{name}.pt.trace.json.gz", chrome_events(trace.frame()))
    if trace_path is not None:
        ingest_traces([trace_path], run.path, None)
    return run.path


def rows(page: str, cls: str) -> dict[str, list[str]]:
    """The body rows of the table of class ``cls``: first cell → the others, as text."""
    m = re.search(rf'<table class="[^"]*\b{cls}\b[^"]*">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert m, cls
    out = {}
    for row in re.findall(r"<tr>(.*?)</tr>", m[1], re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
                 for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
        out[cells[0]] = cells[1:]
    return out


def step_phases(run_dir: Path) -> Counter[str]:
    """vLLM's step annotations in the ingested table (CPU side), by phase."""
    ann = pq.read_table(run_dir / "kernels" / "annotations.parquet").to_pandas()
    ann = ann[(ann["device"] == -1) & ann["name"].str.startswith("execute_context_")]
    parts = ann["name"].str.extract(r"execute_context_(\d+)\(\d+\)_generation_(\d+)")
    ctx, gen = parts[0].astype(int), parts[1].astype(int)
    phase = ["mixed" if c and g else "prefill" if c else "decode" if g else "empty"
             for c, g in zip(ctx, gen, strict=True)]
    return Counter(phase)


def test_cpu_only_capture_has_steps_and_says_there_is_no_gpu_work(tmp_path: Path) -> None:
    run = kernel_run(tmp_path, "cpu", VLLM_CPU_TRACE)
    r = gather_run(run, n_resamples=50)
    page = run_report_html(r)
    assert "<h2>Kernels: the profiled engine steps</h2>" in page
    expected = step_phases(run)
    assert expected == Counter(decode=31, prefill=1, mixed=1, empty=1)
    table = rows(page, "kernel-steps")
    assert {p: int(v[0]) for p, v in table.items()} == dict(expected)
    assert all(v[1] == "0" for v in table.values())  # no step ran GPU work
    assert "34 engine steps on 1 rank(s), cut on annotation" in page
    assert "No GPU events in the profiled steps" in page
    figs = run_figures(r)
    assert figs["kernel_steps"] is None  # nothing to draw: no busy/idle without GPU events
    assert 'class="num kernel-top"' not in page


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kernel_run(tmp_path_factory.mktemp("k"), "gpu", trace=gpu_trace())


def test_gpu_run_section_numbers_equal_the_ingested_tables(gpu_run: Path) -> None:
    r = gather_run(gpu_run, n_resamples=50)
    page = run_report_html(r)
    table = rows(page, "kernel-steps")
    assert {p: int(v[0]) for p, v in table.items()} == dict(step_phases(gpu_run)) == {
        "prefill": 1, "decode": 6}
    assert {p: int(v[1]) for p, v in table.items()} == {"prefill": 1, "decode": 6}
    assert table["decode"][-1] == "6"  # every decode step launch-bound
    gpu = pq.read_table(gpu_run / "kernels" / "gpu.parquet").to_pandas()
    totals = gpu.groupby("name")["dur_ns"].agg(["sum", "count"]).sort_values(
        ["sum"], ascending=False, kind="stable")
    top = rows(page, "kernel-top")
    assert list(top) == list(totals.index)  # 6 names, all listed, most time first
    for name, (total, count) in totals.iterrows():
        assert top[name][1] == f"{count:,}"
        assert top[name][2] == f"{total / 1e6:,.3f}"
    # the figure: busy per step = the union of its kernels, marked µs by µs from the table
    fig = run_figures(r)["kernel_steps"]
    assert fig is not None
    busy = {x: y for t in fig["data"] if t["name"].endswith("GPU busy")
            for x, y in zip(t["x"], t["y"], strict=True)}
    rt = pq.read_table(gpu_run / "kernels" / "runtime.parquet").to_pandas()
    ann = pq.read_table(gpu_run / "kernels" / "annotations.parquet").to_pandas()
    ann = ann.sort_values("t_start_ns").reset_index(drop=True)
    for i, a in ann.iterrows():
        calls = rt[(rt["t_start_ns"] >= a["t_start_ns"])
                   & (rt["t_start_ns"] < a["t_start_ns"] + a["dur_ns"])]
        k = gpu[gpu["correlation_id"].isin(calls["correlation_id"])]
        covered: set[int] = set()
        for s, d in zip(k["t_start_ns"], k["dur_ns"], strict=True):
            covered.update(range(s // 1000, (s + d) // 1000))
        assert busy[i] == pytest.approx(len(covered) / 1000, rel=1e-3)
    cats = run_figures(r)["kernel_categories"]
    assert cats is not None
    assert [t["name"] for t in cats["data"]] == ["gemm", "attention", "communication",
                                                 "memcpy_memset", "other"]
    assert "Launch-bound: 6 of 7 steps with GPU work are launch-bound" in html.unescape(page)


def test_engine_kernel_names_are_escaped(gpu_run: Path) -> None:
    page = run_report_html(gather_run(gpu_run, n_resamples=50))
    assert "<script>alert('k')" not in page
    assert html.escape(HOSTILE, quote=True) in page
    assert HOSTILE in rows(page, "kernel-top")


def test_run_without_kernels_has_no_section(tmp_path: Path) -> None:
    r = gather_run(known_run(tmp_path, "plain"), n_resamples=50)
    page = run_report_html(r)
    assert "Kernels" not in page
    figs = run_figures(r)
    assert figs["kernel_steps"] is None
    assert figs["kernel_categories"] is None


def test_ab_report_names_the_kernel_that_got_slower(tmp_path: Path) -> None:
    a = kernel_run(tmp_path, "a", trace=gpu_trace(40_000))
    b = kernel_run(tmp_path, "b", trace=gpu_trace(70_000))
    ra, rb = gather_run(a, n_resamples=50), gather_run(b, n_resamples=50)
    c = compare_runs(a, b)
    page = ab_report_html(ra, rb, c)
    assert "<h2>Kernels, A → B</h2>" in page
    assert "decode steps: 6 in A, 6 in B" in page
    cat = rows(page, "kernel-ab-cat")
    # the hostile-named "..._gemv" kernel (6 µs) is a GEMM too
    assert cat["gemm"] == ["46.0", "76.0", "+30.0", f"{76 / 46:.2f}×"]
    assert cat["attention"][2] == "+0.0"
    assert list(rows(page, "kernel-ab-slower")) == ["sm90_xmma_gemm_bf16"]
    assert 'class="num kernel-ab-faster"' not in page
    fig = ab_figures(ra, rb, c)["kernel_compare"]
    assert fig is not None
    by = {t["name"][0]: dict(zip(t["x"], t["y"], strict=True)) for t in fig["data"]}
    assert (by["A"]["gemm"], by["B"]["gemm"]) == (46.0, 76.0)
    # one run without kernels: said so, no comparison
    plain = known_run(tmp_path, "plain").path
    page = ab_report_html(ra, gather_run(plain, n_resamples=50), compare_runs(a, plain))
    assert "only A has analysable kernel tables" in page
