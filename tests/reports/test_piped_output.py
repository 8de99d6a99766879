"""Every command's output through a pipe (as a CI log reads it) keeps every table cell whole:
no cell cut off at the right edge, none shortened with "…", and the long texts the command
also writes to JSON (comparison notes, budget messages, differing settings) appear on one
line, verbatim. ``COLUMNS`` is removed from the environment: a bare pipe has no width.

The commands run as a user runs them (``python -m profiler.cli …``, stdout a pipe).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from servescope.rundir.group import RunGroup, write_group
from tests.analyzers._gate_runs import edit_manifest, lognormal_ms, synthetic_run

REPO = Path(__file__).resolve().parents[2]
TRACE = REPO / "tests" / "data" / "traces" / "tinyrun_rank0.1795344569314968630.pt.trace.json.gz"
LONG_FLAG = "--a-very-long-engine-flag-value=" + "x" * 150
_BORDERS = set("│┃┏┓┗┛┡┩┣┫└┘┌┐├┤╇╈╋┼┠┨╭╮╰╯║")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    return subprocess.run([sys.executable, "-m", "profiler.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True,
                          timeout=300, check=False)


def _whole(out: str) -> None:
    assert "…" not in out, out
    for line in out.splitlines():
        s = line.rstrip()
        if s and s[0] in _BORDERS:
            assert s[-1] in _BORDERS, f"a table row cut off at the right: {s!r}"


def _one_line(out: str, text: str) -> None:
    if text:
        assert any(text in line for line in out.splitlines()), (text, out)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("piped")
    (root / "store").mkdir()
    for i, median in enumerate((100.0, 104.0, 98.0, 150.0)):
        synthetic_run(root / "store", f"r{i}", lognormal_ms(60, median, 0.3, i))
    edit_manifest(root / "store" / "r3", {"engine": {"name": "vllm", "command": [
        "vllm", "serve", "m", LONG_FLAG]}})
    for arm, medians in (("ga", (100.0, 104.0)), ("gb", (130.0, 135.0))):
        (root / arm).mkdir()
        for i, m in enumerate(medians):
            synthetic_run(root / arm, f"r{i}", lognormal_ms(60, m, 0.3, 10 + i))
        write_group(RunGroup(root / arm, ["r0", "r1"]))
    (root / "budgets.toml").write_text('[budgets]\nttft_p99 = "+10%"\nttft_p50 = "+10%"\n'
                                       'e2e_p50 = "2x noise"\n[validity]\nmin_requests = 20\n')
    return root


def test_compare_keeps_every_note_and_setting_whole(runs: Path):
    res = _cli("compare", str(runs / "store" / "r0"), str(runs / "store" / "r3"), "--json",
               str(runs / "c.json"))
    assert res.returncode == 0, res.stderr
    _whole(res.stdout)
    data = json.loads((runs / "c.json").read_text())
    notes = [m["note"] for m in data["metrics"] if m["note"]]
    assert notes  # p99 of 60 requests: "interval too narrow"
    for note in notes:
        _one_line(res.stdout, note)
    _one_line(res.stdout, LONG_FLAG.split("=", 1)[1])  # engine.flag.--a-very-long-…


def test_compare_of_groups_keeps_the_mde_notes_whole(runs: Path):
    res = _cli("compare", str(runs / "ga"), str(runs / "gb"), "--json", str(runs / "g.json"))
    assert res.returncode == 0, res.stderr
    _whole(res.stdout)
    notes = [m["note"] for m in json.loads((runs / "g.json").read_text())["metrics"]]
    assert any("MDE" in n for n in notes)
    for note in notes:
        _one_line(res.stdout, note)


def test_gate_keeps_every_budget_message_whole(runs: Path):
    res = _cli("gate", "--budgets", str(runs / "budgets.toml"), "--baseline", str(runs / "ga"),
               "--json", str(runs / "gate.json"), str(runs / "gb"))
    assert res.returncode in (0, 1), res.stderr
    _whole(res.stdout)
    for r in json.loads((runs / "gate.json").read_text())["results"]:
        _one_line(res.stdout, r["message"])


@pytest.mark.parametrize("args", [
    ("summarize", "{run}"),
    ("analyze", "{run}"),
    ("gate", "--history", "{store}"),
    ("kernels", str(TRACE)),
    ("version",),
])
def test_other_commands_keep_their_tables_whole(runs: Path, args: tuple[str, ...]):
    argv = [a.format(run=runs / "store" / "r3", store=runs / "store") for a in args]
    res = _cli(*argv)
    assert res.returncode in (0, 1), res.stderr
    assert res.stdout.strip()
    _whole(res.stdout)
