"""``servescope kernels``: the kernel analysis of a trace file or a run's kernels/ tables,
printed and exported, with one-line errors for what it cannot read."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from collectors.kernels import ingest_traces
from profiler.cli import app

TRACES = Path(__file__).parents[1] / "data" / "traces"
VLLM_CPU = next(TRACES.glob("tinyrun_rank0.*.pt.trace.json.gz"))


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(app, ["kernels", *args], env={"COLUMNS": "200"})


def test_a_real_trace_file_is_cut_into_the_engines_steps(tmp_path: Path) -> None:
    out = tmp_path / "k.json"
    res = _invoke(str(VLLM_CPU), "--json", str(out))
    assert res.exit_code == 0, res.output
    assert "34 steps (cut on: annotation)" in res.output
    assert "decode" in res.output
    assert "no GPU events in the steps" in res.output  # vLLM-CPU: a CPU-only trace
    data = json.loads(out.read_text())
    phases = [s["phase"] for s in data["analysis"]["steps"]]
    assert (phases.count("decode"), phases.count("prefill"), phases.count("mixed")) == (
        31, 1, 1)
    assert data["comparison"] is None


def test_a_run_directory_and_a_comparison(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    ingest_traces([VLLM_CPU], run, None)
    out = tmp_path / "k.json"
    res = _invoke(str(run), str(VLLM_CPU), "--json", str(out))
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert len(data["analysis"]["steps"]) == 34
    cmp = data["comparison"]
    assert cmp["steps_a"] == cmp["steps_b"] == 34  # the same trace: nothing changed
    assert cmp["span_mean_a_ns"] == cmp["span_mean_b_ns"]


def test_what_it_cannot_read_is_one_line(tmp_path: Path) -> None:
    empty_run = tmp_path / "run"
    empty_run.mkdir()
    broken_run = tmp_path / "broken"
    (broken_run / "kernels").mkdir(parents=True)
    (broken_run / "kernels" / "gpu.parquet").write_bytes(b"not parquet")
    not_a_trace = tmp_path / "x.json"
    not_a_trace.write_text('{"hello": 1}')
    for args, says in (([str(tmp_path / "missing.json")], "no such trace file"),
                       ([str(empty_run)], "has no kernels/ tables"),
                       ([str(broken_run)], "cannot read"),
                       ([str(not_a_trace)], "x.json"),
                       ([str(VLLM_CPU), "--engine", "vlm"], "unknown engine 'vlm'"),
                       ([str(VLLM_CPU), "--top", "0"], "--top must be at least 1")):
        res = _invoke(*args)
        assert res.exit_code == 2, (args, res.output)
        assert says in res.output, (args, res.output)
        assert "Traceback" not in res.output
