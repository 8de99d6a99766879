"""``report_command`` and ``write_run_report``: exit codes, one-line errors, the file written,
plotly imported only when a page is assembled, and the size of a 10,000-request report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.report_size import build_large_run
from profiler.commands_report import REPORT_FILE, report_command, write_run_report
from tests.analyzers._gate_runs import edit_manifest
from tests.analyzers._rundir import write_run
from tests.reports._html_runs import known_run


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:")
    assert "\n" not in err
    assert "Traceback" not in err
    return err


def test_report_of_one_run_and_of_two(tmp_path, capsys):
    a = known_run(tmp_path, "a", engine=False)
    b = known_run(tmp_path, "b", engine=False, scale=2.0)
    out = tmp_path / "one.html"
    assert report_command(a.path, None, out) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    ab = tmp_path / "ab.html"
    assert report_command(a.path, b.path, ab, slo="ttft:30") == 0
    text = ab.read_text()
    assert "servescope A/B report: a → b" in text
    assert "workload" not in text.split("What changed in the setup")[1].split("<h2>")[0]
    assert "regressed" in text
    assert "ttft ≤ 30 ms" in text
    assert "report:" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*.tmp"))


def test_write_run_report_writes_into_the_run_directory(tmp_path):
    run = known_run(tmp_path)
    path = write_run_report(run.path)
    assert path == run.path / REPORT_FILE
    assert "servescope report: known" in path.read_text()


def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    assert report_command(tmp_path / "missing", None, tmp_path / "r.html") == 2
    assert "missing" in _one_line_error(capsys)

    newer = known_run(tmp_path, "newer", engine=False)
    data = json.loads((newer.path / "manifest.json").read_text())
    edit_manifest(newer.path, {"schema_version": data["schema_version"] + 1})
    assert report_command(newer.path, None, tmp_path / "r.html") == 2
    assert "newer" in _one_line_error(capsys)

    empty = write_run(tmp_path, [], name="empty")
    assert report_command(empty.path, None, tmp_path / "r.html") == 2
    assert "no requests" in _one_line_error(capsys)

    ok = known_run(tmp_path, "ok", engine=False)
    assert report_command(ok.path, None, tmp_path) == 2  # the output is a directory
    _one_line_error(capsys)
    assert report_command(ok.path, newer.path, tmp_path / "r.html") == 2
    _one_line_error(capsys)
    assert report_command(ok.path, None, tmp_path / "r.html", slo="ttft") == 2
    _one_line_error(capsys)
    assert not (tmp_path / "r.html").exists()


def test_plotly_is_imported_only_to_assemble_a_page():
    code = ("import sys, profiler.commands_report, reports.html, reports.html.page; "
            "print('plotly' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[2])
    assert res.stdout.strip() == "False"


def test_a_10k_request_report_is_under_5_mb(tmp_path):
    run_dir = build_large_run(tmp_path, 10_000, tokens=16)
    path = write_run_report(run_dir)
    size = path.stat().st_size
    assert size < 5_000_000
    text = path.read_text()
    figs_json = text.split('id="figures">', 1)[1].split("</script>", 1)[0]
    assert len(figs_json) < 400_000  # the plotted data itself stays small
    figs = {f["id"]: f for f in json.loads(figs_json)}
    ttft = next(t for t in figs["fig-timeline"]["data"] if t["name"] == "TTFT per request")
    assert len(ttft["x"]) == 2000
    assert "2,000 of 9,900 requests shown" in text  # the sampling is said on the plot
    assert "drawn at ≤ 400" in text
