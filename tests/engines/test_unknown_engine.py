"""A run directory naming an engine this version does not know (written by a newer servescope,
or edited by hand) is analysed without engine signals, with a warning naming the engine:
``analyze``, ``compare`` and ``report`` end normally, never with a traceback or "internal
error" (they did: the lookup's miss was a LookupError and only ValueError was caught)."""

from __future__ import annotations

import html
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from servescope.engines.registry import UnknownEngineError, get_spec
from servescope.registry import UnknownNameError
from servescope.rundir.reader import RunData, load_run
from tests.analyzers._gate_runs import add_engine, synthetic_run, vllm_page

REPO = Path(__file__).resolve().parents[2]


def _name_engine(run: RunData, name: str) -> RunData:
    """Rename the engine the run recorded."""
    path = run.path / "manifest.json"
    data = json.loads(path.read_text())
    section = data["engine"]
    section["name"] = name
    path.write_text(json.dumps(data))
    return load_run(run.path)


def _future_run(root: Path, name: str) -> RunData:
    run = synthetic_run(root, name, np.full(40, 50.0))
    run = add_engine(run, [(0.0, vllm_page(ttft_buckets={0.1: 0}, kv_usage=0.1, preemptions=0)),
                           (500.0, vllm_page(ttft_buckets={0.1: 40}, kv_usage=0.5,
                                             preemptions=0))])
    return _name_engine(run, "futurellm")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "profiler.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=240, check=False,
                          env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"})


def _ok(res: subprocess.CompletedProcess[str], warned_in: str | None = None) -> str:
    """The command ended normally and warned (in its output, or in ``warned_in``)."""
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "Traceback" not in out, out
    assert "internal error" not in out, out
    where = out if warned_in is None else warned_in
    assert "unknown engine 'futurellm'" in where, out
    assert "without engine signals" in where, out
    return out


def test_the_miss_is_both_a_lookup_and_a_value_error():
    with pytest.raises(UnknownEngineError) as err:
        get_spec("futurellm")
    assert isinstance(err.value, UnknownNameError)
    assert isinstance(err.value, LookupError)
    assert isinstance(err.value, ValueError)


def test_analyze_compare_report_warn_and_go_on(tmp_path: Path):
    a = _future_run(tmp_path, "a")
    b = synthetic_run(tmp_path, "b", np.full(40, 52.0))
    out = _ok(_cli("analyze", str(a.path), "--json", str(tmp_path / "analysis.json")))
    assert "no bottleneck found" in out
    analysis = json.loads((tmp_path / "analysis.json").read_text())
    assert any("futurellm" in w for w in analysis.get("warnings", [])), analysis.keys()
    _ok(_cli("compare", str(a.path), str(b.path)))
    res = _cli("report", str(a.path), "--out", str(tmp_path / "a.html"))
    _ok(res, warned_in=html.unescape((tmp_path / "a.html").read_text()))  # a caveat
