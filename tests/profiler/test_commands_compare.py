"""The compare / gate / history command functions as a CI job sees them: exit codes, one-line
errors on stderr (never a traceback), and the report files they write."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from profiler.commands_compare import (
    compare_command,
    gate_command,
    gate_entry,
    history_command,
    parse_fraction,
)
from servescope.rundir.layout import SCHEMA_VERSION
from tests.analyzers._gate_runs import edit_manifest, lognormal_ms, synthetic_run

BUDGETS = '[budgets]\nttft_p50 = "+10%"\ne2e_p50 = "+10%"\noutput_throughput = "-20%"\n'


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """a and b: one configuration, two seeds; slow: TTFT and ITL doubled."""
    for name, seed, k in (("a", 1, 1.0), ("b", 2, 1.0), ("slow", 3, 2.0)):
        synthetic_run(tmp_path, name, lognormal_ms(300, 50, 0.3, seed) * k,
                      lognormal_ms(300, 5, 0.2, seed + 10) * k)
    (tmp_path / "budgets.toml").write_text(BUDGETS)
    return tmp_path


def _gate(root: Path, candidate: str, **kw: object) -> int:
    args: dict[str, object] = {"budgets": root / "budgets.toml", "baseline": root / "a", **kw}
    return gate_command(root / candidate, **args)  # type: ignore[arg-type]


def _one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_gate_passes_two_runs_of_one_configuration(runs, capsys, monkeypatch):
    summary = runs / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code = _gate(runs, "b", junit=runs / "j.xml", markdown=runs / "g.md",
                 json_out=runs / "g.json")
    out = capsys.readouterr().out
    assert code == 0
    assert "gate: pass (exit code 0)" in out
    assert summary.read_text().startswith("## servescope gate: ✅ pass")
    assert (runs / "g.md").read_text() == summary.read_text().rstrip("\n") + "\n"
    suite = ET.parse(runs / "j.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("3", "0")
    assert json.loads((runs / "g.json").read_text())["exit_code"] == 0


def test_gate_fails_a_slowed_run_naming_the_metrics(runs, capsys, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    code = _gate(runs, "slow", junit=runs / "j.xml")
    out = " ".join(capsys.readouterr().out.split())
    assert code == 1
    assert "gate: regression (exit code 1)" in out
    suite = ET.parse(runs / "j.xml").getroot().find("testsuite")
    assert suite is not None
    failed = {c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert failed == {"ttft_p50 +10%", "e2e_p50 +10%"}


@pytest.mark.parametrize("case", ["missing_baseline", "not_a_run", "newer_schema",
                                  "empty_run", "interrupted"])
def test_gate_invalid_runs_exit_2(runs, capsys, case):
    baseline = runs / "a"
    candidate = "b"
    if case == "missing_baseline":
        baseline = runs / "nope"
    elif case == "not_a_run":
        baseline = runs / "dir"
        baseline.mkdir()
    elif case == "newer_schema":
        edit_manifest(runs / "b", {"schema_version": SCHEMA_VERSION + 1})
    elif case == "empty_run":
        synthetic_run(runs, "empty", [])
        candidate = "empty"
    else:
        edit_manifest(runs / "b", {"status": "interrupted"})
    code = _gate(runs, candidate, baseline=baseline, junit=runs / "j.xml")
    captured = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in captured.out + captured.err
    assert "gate: invalid (exit code 2)" in captured.out
    want = {"missing_baseline": "does not exist", "not_a_run": "not a servescope run",
            "newer_schema": "newer than this servescope understands",
            "empty_run": "no measured requests", "interrupted": "'interrupted'"}[case]
    assert want in " ".join(captured.out.split())
    suite = ET.parse(runs / "j.xml").getroot().find("testsuite")  # a report is still written
    assert suite is not None
    assert int(suite.get("errors") or 0) >= 1


def test_budget_typo_exits_2_with_the_line_and_valid_names(runs, capsys):
    (runs / "typo.toml").write_text('[budgets]\nttft_p50 = "+10%"\nttft_p59 = "+10%"\n')
    code = _gate(runs, "b", budgets=runs / "typo.toml")
    line = _one_line_error(capsys.readouterr().err)
    assert code == 2
    assert "typo.toml:3: unknown metric 'ttft_p59'" in line
    assert "output_throughput" in line


@pytest.mark.parametrize(("kwargs", "text"), [
    ({"budgets": Path("/nonexistent/b.toml")}, "cannot read the budgets file"),
    ({"baseline": None}, "give a baseline"),
    ({"baseline_store": Path("/tmp")}, "give a baseline"),  # both given
    ({"junit": Path("/nonexistent/dir/j.xml")}, "No such file or directory"),
])
def test_gate_usage_errors_exit_2(runs, capsys, kwargs, text):
    assert _gate(runs, "b", **kwargs) == 2
    assert text in _one_line_error(capsys.readouterr().err)


def test_gate_with_a_baseline_store(runs, capsys):
    store = runs / "store"
    store.mkdir()
    for name, start in (("old", 1), ("new", 2)):
        synthetic_run(store, name, lognormal_ms(300, 50, 0.3, 5 + start),
                      lognormal_ms(300, 5, 0.2, 15), manifest={"started_wall_ns": start})
    code = gate_command(runs / "slow", budgets=runs / "budgets.toml", baseline_store=store)
    out = " ".join(capsys.readouterr().out.split())
    assert code == 1
    assert "newest complete run" in out
    assert str(store / "new") in out


def test_an_unexpected_error_is_exit_2_not_a_traceback(runs, capsys, monkeypatch):
    import analyzers.gate

    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(analyzers.gate, "run_gate", boom)
    assert _gate(runs, "b") == 2
    assert "internal error (RuntimeError: disk on fire)" in _one_line_error(
        capsys.readouterr().err)


def test_compare_prints_and_writes_json_and_markdown(runs, capsys):
    code = compare_command(runs / "a", runs / "slow", json_out=runs / "c.json",
                           markdown_out=runs / "c.md", min_effect="10%")
    out = capsys.readouterr().out
    assert code == 0
    assert "ttft_p50" in out
    assert "regressed" in out
    data = json.loads((runs / "c.json").read_text())
    m = {x["name"]: x for x in data["metrics"]}
    assert m["ttft_p50"]["verdict"] == "regressed"
    assert data["settings"]["min_effect_frac"] == 0.1
    assert "| ttft\\_p50 |" in (runs / "c.md").read_text()


@pytest.mark.parametrize(("kwargs", "text"), [
    ({"metrics": "ttft_p50,ttft_p95"}, "unknown metric 'ttft_p95'"),
    ({"min_effect": "five"}, "--min-effect 'five'"),
    ({"min_effect": "5"}, "did you mean 5%?"),
    ({"correction": "bonferroni"}, "use holm or bh"),
    ({"slo": "ttft=5"}, "expected NAME:MS"),
])
def test_compare_usage_errors_exit_2(runs, capsys, kwargs, text):
    assert compare_command(runs / "a", runs / "b", **kwargs) == 2
    assert text in _one_line_error(capsys.readouterr().err)


def test_compare_missing_run_exit_2(runs, capsys):
    assert compare_command(runs / "a", runs / "zzz") == 2
    assert "does not exist" in _one_line_error(capsys.readouterr().err)


def test_history_command(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    for i in range(8):
        synthetic_run(tmp_path, f"r{i}", lognormal_ms(150, 50, 0.3, 7) * (1 + 0.05 * i),
                      manifest={"started_wall_ns": i})
    code = history_command([tmp_path], metrics="ttft_p50,error_rate", junit=tmp_path / "h.xml")
    out = capsys.readouterr().out
    assert code == 1
    assert "history: exit code 1" in out
    assert ET.parse(tmp_path / "h.xml").getroot().find("testsuite") is not None
    few = tmp_path / "few"
    few.mkdir()
    for i in range(3):
        synthetic_run(few, f"r{i}", lognormal_ms(50, 50, 0.3, 7))
    assert history_command([few]) == 2
    assert "needs at least 4" in capsys.readouterr().err
    assert history_command([tmp_path / "nope"]) == 2


def test_parse_fraction():
    assert parse_fraction("5%") == pytest.approx(0.05)
    assert parse_fraction("0.05") == pytest.approx(0.05)
    assert parse_fraction(" 12.5 % ") == pytest.approx(0.125)
    with pytest.raises(ValueError, match="did you mean"):
        parse_fraction("5")


def test_gate_entry_dispatches_and_rejects_mixed_modes(runs, capsys, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert gate_entry([runs / "slow"], budgets=runs / "budgets.toml", baseline=runs / "a") == 1
    assert gate_entry([runs / "b"], budgets=runs / "budgets.toml", baseline=runs / "a") == 0
    capsys.readouterr()
    for kwargs, text in (
        ({"history": True, "budgets": runs / "budgets.toml"}, "cannot be used with --history"),
        ({"metrics": "ttft_p50", "budgets": runs / "budgets.toml", "baseline": runs / "a"},
         "belong to --history"),
        ({"baseline": runs / "a"}, "--budgets FILE is required"),
    ):
        assert gate_entry([runs / "b"], **kwargs) == 2
        assert text in _one_line_error(capsys.readouterr().err)
    assert gate_entry([runs / "a", runs / "b"], budgets=runs / "budgets.toml",
                      baseline=runs / "a") == 2
    assert "is both a baseline and a candidate run" in capsys.readouterr().err
    # dispatched to history: a, b and slow are three runs, one short of a history
    assert gate_entry([runs], history=True, metrics="ttft_p50") == 2
    assert "3 usable runs; history mode needs at least 4" in capsys.readouterr().err
