"""``servescope export perfetto RUN [--out FILE]``: writes the trace, says where and how many
of each kind; a path that is not a run is one line and exit 2."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from typer.testing import CliRunner, Result

from profiler.cli import app
from tests.reports._perfetto_runs import N, client_run, full_run


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(app, ["export", "perfetto", *args], env={"COLUMNS": "200"})


def test_it_writes_the_trace_and_counts_each_kind(tmp_path: Path) -> None:
    run = full_run(tmp_path)
    res = _invoke(str(run.path))
    assert res.exit_code == 0, res.output
    target = run.path / "perfetto.json.gz"
    assert f"wrote {target}" in res.output
    assert f"request slices: {N}" in res.output
    assert "GPU kernel slices: 4" in res.output
    assert "launch→GPU flows: 2" in res.output
    assert "engine counter samples:" in res.output
    assert "GPU counter samples:" in res.output
    trace = json.loads(gzip.decompress(target.read_bytes()))
    events = sum(1 for _ in trace["traceEvents"])
    assert f"({events:,} events" in res.output


def test_out_chooses_the_file_and_its_compression(tmp_path: Path) -> None:
    run = client_run(tmp_path)
    out = tmp_path / "trace.json"
    res = _invoke(str(run.path), "--out", str(out))
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_bytes())["displayTimeUnit"] == "ns"
    assert "GPU" not in res.output  # a run without GPU telemetry or kernels


def test_what_is_not_a_run_is_one_line_and_exit_2(tmp_path: Path) -> None:
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    broken = client_run(tmp_path, "broken").path
    (broken / "kernels").mkdir()
    (broken / "kernels" / "gpu.parquet").write_bytes(b"not parquet")
    for path, says in ((tmp_path / "missing", "does not exist"),
                       (not_a_run, "manifest"),
                       (a_file, "not a directory"),
                       (broken, "cannot read")):
        res = _invoke(str(path))
        assert res.exit_code == 2, (path, res.output)
        assert says in res.output, (path, res.output)
        assert len(res.output.strip().splitlines()) == 1, res.output
        assert "Traceback" not in res.output
    assert not (broken / "perfetto.json.gz").exists()
    assert _invoke().exit_code == 2  # RUN is required
