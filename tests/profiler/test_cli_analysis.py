"""``servescope import`` and ``servescope analyze`` as a user calls them (typer's runner):
exit codes, the JSON file, and clear one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from profiler.cli import app

PEERS = Path(__file__).resolve().parents[1] / "data" / "peers"
runner = CliRunner()


def test_import_then_analyze_with_json(tmp_path: Path):
    out = tmp_path / "imported"
    res = runner.invoke(app, ["import", str(PEERS / "vllm-bench" / "vllm_bench_serve.json"),
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    js = tmp_path / "analysis.json"
    res = runner.invoke(app, ["analyze", str(out), "--json", str(js)])
    assert res.exit_code == 0, res.output
    data = json.loads(js.read_text())
    assert set(data) >= {"steady", "percentile_cis", "findings", "decomposition"}
    ci = data["percentile_cis"]["ttft_ns"]["50.0"]
    assert ci["low"] <= ci["estimate"] <= ci["high"]
    assert data["findings"] == []  # a clean reference-server capture
    assert "no bottleneck found" in res.output


def test_analyze_bad_input_exits_2_with_one_line(tmp_path: Path):
    res = runner.invoke(app, ["analyze", str(tmp_path / "missing")])
    assert res.exit_code == 2
    assert "does not exist" in res.output
    assert "Traceback" not in res.output
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "manifest.json").write_text(json.dumps({"schema_version": 999}))
    res = runner.invoke(app, ["analyze", str(newer)])
    assert res.exit_code == 2
    assert "newer than this servescope" in res.output.replace("\n", " ")
    res = runner.invoke(app, ["analyze", str(tmp_path), "--slo", "ttft:fast"])
    assert res.exit_code == 2


def test_import_refuses_a_non_empty_out(tmp_path: Path):
    (tmp_path / "x").write_text("keep me")
    res = runner.invoke(app, ["import", str(PEERS / "guidellm" / "benchmarks.json"),
                              "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert (tmp_path / "x").read_text() == "keep me"


def test_analyze_an_empty_run_exits_2(tmp_path: Path):
    from tests.analyzers._rundir import write_run

    run = write_run(tmp_path, [])
    res = runner.invoke(app, ["analyze", str(run.path)])
    assert res.exit_code == 2
    assert "has no requests" in res.output


def test_gate_and_compare_through_the_cli(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    src = str(PEERS / "vllm-bench" / "vllm_bench_serve.json")
    for d in (a, b):
        assert runner.invoke(app, ["import", src, "--out", str(d)]).exit_code == 0
    budgets = tmp_path / "budgets.toml"
    budgets.write_text('[budgets]\nttft_p99 = "+10%"\nerror_rate = "<= 1%"\n')
    junit = tmp_path / "gate.xml"
    res = runner.invoke(app, ["gate", "--budgets", str(budgets), "--baseline", str(a),
                              str(b), "--junit", str(junit)])
    assert res.exit_code == 0, res.output  # the same file twice: no regression
    assert "<testsuite" in junit.read_text()
    res = runner.invoke(app, ["compare", str(a), str(b)])
    assert res.exit_code == 0, res.output
    # usage mistakes are exit 2 with a message, not a traceback
    res = runner.invoke(app, ["gate", str(b)])
    assert res.exit_code == 2
    assert "--budgets" in res.output
    budgets.write_text('[budgets]\nttft_p999 = "+10%"\n')
    res = runner.invoke(app, ["gate", "--budgets", str(budgets), "--baseline", str(a), str(b)])
    assert res.exit_code == 2
    assert "did you mean ttft_p99" in res.output.replace("\n", " ")


def test_report_single_and_ab(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    src = str(PEERS / "vllm-bench" / "vllm_bench_serve.json")
    for d in (a, b):
        assert runner.invoke(app, ["import", src, "--out", str(d)]).exit_code == 0
    res = runner.invoke(app, ["report", str(a)])
    assert res.exit_code == 0, res.output
    html = (a / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "cdn.plot.ly" not in html  # plotly is inlined: the file works offline
    out = tmp_path / "ab.html"
    res = runner.invoke(app, ["report", str(a), str(b), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 0
    res = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert res.exit_code == 2
