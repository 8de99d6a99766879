"""The CLI as a user runs it: exit codes, clear errors, nothing heavy on --help."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from profiler.selftest.process import RefServerHandle
from servescope.rundir.reader import load_run


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "profiler.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_help_is_fast_and_imports_nothing_heavy() -> None:
    code = ("import sys, time; t = time.perf_counter(); sys.argv = ['servescope', '--help']\n"
            "from profiler.cli import app\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('pandas', 'pyarrow', 'plotly', 'pynvml', 'torch', 'numpy',"
            " 'aiohttp') if m in sys.modules]\n"
            "print('HEAVY', heavy, time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("HEAVY"))
    assert line.startswith("HEAVY []"), line
    assert "attach" in out
    assert "run" in out


def test_attach_then_summarize(refserver: RefServerHandle, tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = cli("attach", "--url", refserver.url, "--out", str(out), "--concurrency", "4",
            "--requests", "20", "--input-len", "fixed:8", "--output-len", "fixed:8")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "TTFT" in r.stdout
    run = load_run(out)
    assert run.manifest.status == "complete"
    assert len(run.requests) == 20
    assert run.manifest.engine is not None
    assert run.manifest.engine.name == "openai"  # no /metrics: generic adapter
    s = cli("summarize", str(out), "--definitions", "all", "--slo", "ttft:500,itl:100")
    assert s.returncode == 0, s.stderr
    assert "goodput" in s.stdout
    assert "vllm bench serve" in s.stdout


def test_bad_inputs_exit_2_with_a_clear_message(refserver: RefServerHandle,
                                                tmp_path: Path) -> None:
    r = cli("summarize", str(tmp_path / "nope"))
    assert r.returncode == 2
    assert "does not exist" in r.stderr
    r = cli("summarize", str(tmp_path))
    assert r.returncode == 2
    assert "not a servescope run directory" in r.stderr
    r = cli("attach", "--url", refserver.url, "--out", str(tmp_path / "a"),
            "--input-len", "fixd:8")
    assert r.returncode == 2
    assert "did you mean 'fixed'" in r.stderr
    r = cli("attach", "--url", "http://127.0.0.1:9", "--out", str(tmp_path / "b"))
    assert r.returncode == 2
    assert "is the server up" in r.stderr
    assert not (tmp_path / "b").exists()


def test_bad_slo_is_exit_2(refserver: RefServerHandle, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert cli("attach", "--url", refserver.url, "--out", str(out), "--requests", "3",
               "--output-len", "fixed:4").returncode == 0
    r = cli("summarize", str(out), "--slo", "ttft=5")
    assert r.returncode == 2
    assert "expected NAME:MS" in r.stderr


def test_run_rejects_an_unknown_engine_before_starting_anything(tmp_path: Path) -> None:
    t0 = time.monotonic()
    r = cli("run", "--out", str(tmp_path / "r"), "--", sys.executable, "-c", "pass")
    assert r.returncode == 2
    assert "pass --engine" in r.stderr
    assert time.monotonic() - t0 < 30


def test_bad_engine_and_size_options_exit_2_before_anything_starts(tmp_path: Path) -> None:
    """Each used to end in a misleading 'not a servescope run directory' (the scraper's own
    check failed after the run directory was made, before its manifest was)."""
    cases = [
        (["attach", "--url", "http://127.0.0.1:9", "--metrics-interval", "0"],
         "--metrics-interval must be positive"),
        (["attach", "--url", "http://127.0.0.1:9", "--metrics-max-bytes", "0"],
         "--metrics-max-bytes must be positive"),
        (["attach", "--url", "http://127.0.0.1:9", "--model", "m",
          "--max-response-bytes", "0"], "max_response_bytes must be positive"),
        (["run", "--ready-timeout", "0", "--", "vllm", "serve", "m"],
         "--ready-timeout must be positive"),
    ]
    for k, (args, message) in enumerate(cases):
        out = tmp_path / f"r{k}"
        r = cli(*args[:1], "--out", str(out), *args[1:])
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr + r.stdout
        assert not out.exists()


def _options(command: str) -> dict[str, dict[str, object]]:
    import typer.main

    from profiler.cli import app

    cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    return {p.name: {"opts": p.opts, "secondary": p.secondary_opts, "default": p.default,
                     "help": getattr(p, "help", None),
                     "panel": getattr(p, "rich_help_panel", None)}
            for p in cmd.params if p.name is not None}


def test_run_and_attach_expose_the_same_workload_and_engine_options() -> None:
    from dataclasses import fields

    from profiler.cli import EngineFlags
    from profiler.cli_workload import WorkloadOptions

    run, attach = _options("run"), _options("attach")
    shared = [f.name for f in (*fields(WorkloadOptions), *fields(EngineFlags))]
    assert len(shared) >= 35
    differ = {"api_key_env"}  # run's default is the serving command's own key
    for name in shared:
        assert name in run, name
        assert name in attach, name
        if name not in differ:
            assert run[name] == attach[name], name
    assert run["api_key_env"]["opts"] == attach["api_key_env"]["opts"]
    assert (run["api_key_env"]["default"], attach["api_key_env"]["default"]) == (
        None, "OPENAI_API_KEY")
    # each command's own options, and nothing else
    assert set(run) - set(shared) == {"command", "out", "url", "ready_timeout", "repeat",
                                      "restart_between", "vs", "order"}
    assert set(attach) - set(shared) == {"url", "out", "pid", "repeat", "vs", "order"}
    assert run["order"]["default"] == attach["order"]["default"] == "alternate"
    assert run["collect"]["default"] == "metrics"
    assert attach["no_metrics"]["opts"] == ["--no-metrics"]
    assert attach["per_chunk_usage"]["secondary"] == ["--no-per-chunk-usage"]
    assert {run[n]["panel"] for n in (f.name for f in fields(WorkloadOptions))} == {"Workload"}
    assert {run[n]["panel"] for n in (f.name for f in fields(EngineFlags))} == {"Engine"}


def test_collect_names_what_it_knows_before_anything_starts(tmp_path: Path) -> None:
    out = tmp_path / "r"
    for args in (["attach", "--url", "http://127.0.0.1:9"],
                 ["run", "--engine", "vllm", "--", sys.executable, "-c", "pass"]):
        r = cli(*args[:1], "--out", str(out), "--collect", "metrics,warpdrive", *args[1:])
        assert r.returncode == 2, r.stderr
        assert ("--collect: unknown collector 'warpdrive'; valid collectors: requests, metrics, "
                "gpu, stacks, kernels") in r.stderr, r.stderr
        assert "Traceback" not in r.stderr + r.stdout
        assert not out.exists()


def test_a_collector_this_machine_cannot_run_is_exit_2_before_anything(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """attach and run check every chosen collector's environment first (a test collector
    whose validate_environment() fails; the real registry is left alone)."""
    from collectors.registry import CollectorEntry
    from profiler.cli_workload import WorkloadOptions
    from profiler.commands_run import attach_command, run_command
    from profiler.engine_run import EngineOptions
    from servescope.registry import Registry
    from tests.collectors._probe import Probe

    fix = "the probe needs probe-tools: pip install probe-tools"
    reg = Registry("collector", [("probe", CollectorEntry("probe", "a test probe",
                                                          lambda: Probe(unavailable=fix)))])
    out, marker = tmp_path / "r", tmp_path / "engine-started"
    code = attach_command("http://127.0.0.1:9", WorkloadOptions(),
                          EngineOptions(collect="probe", registry=reg), out, ["t"])
    assert code == 2
    assert f"error: {fix}" in capsys.readouterr().err
    code = run_command([sys.executable, "-c", f"open({str(marker)!r}, 'w')"], WorkloadOptions(),
                       EngineOptions(engine="openai", collect="probe", registry=reg), out,
                       ["t"])
    assert code == 2
    assert f"error: {fix}" in capsys.readouterr().err
    assert not out.exists()
    assert not marker.exists()
