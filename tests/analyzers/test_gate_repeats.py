"""The gate over repeats: run groups and lists of runs on either side, relative budgets judged
against the between-run model, noise budgets (``k x noise``), and a baseline store that keeps
its repeats. Runs are real run directories whose TTFT p50 is exactly the median the test
chose (``test_between_runs._arm``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzers.budgets import parse_budgets
from analyzers.gate import BudgetStatus, latest_baseline, run_gate
from profiler.commands_compare import gate_entry
from servescope.rundir.group import RunGroup, write_group
from tests.analyzers.test_between_runs import _arm

BUDGET = parse_budgets('[budgets]\nttft_p50 = "+10%"\n[validity]\nmin_requests = 20\n')
NOISE = parse_budgets('[budgets]\nttft_p50 = "3x noise"\n[validity]\nmin_requests = 20\n')
BASE = [100.0, 106.0, 96.0]


def _group(root: Path, name: str, medians: list[float]) -> Path:
    g = root / name
    g.mkdir(parents=True)
    runs = _arm(g, "r", medians)
    write_group(RunGroup(g, [p.name for p in runs], arm=name))
    return g


def test_a_real_regression_breaches_a_ten_percent_budget(tmp_path: Path):
    a = _group(tmp_path, "a", BASE)
    b = _group(tmp_path, "b", [m * 1.25 for m in BASE])
    g = run_gate(b, BUDGET, baseline=a)
    assert g.comparison is not None
    assert g.comparison.runs == (3, 3)
    assert g.exit_code == 1
    assert g.results[0].status is BudgetStatus.BREACH
    assert g.results[0].change is not None
    assert g.results[0].change.estimate == pytest.approx(0.25)


def test_run_to_run_noise_does_not_fail_the_gate_though_single_runs_do(tmp_path: Path):
    a = _group(tmp_path, "a", [100.0, 125.0, 85.0])
    b = _group(tmp_path, "b", [118.0, 96.0, 110.0])
    assert run_gate(b / "r0", BUDGET, baseline=a / "r0").exit_code == 1  # +18 %, narrow CIs
    g = run_gate(b, BUDGET, baseline=a)
    assert g.exit_code == 0
    assert g.results[0].status in (BudgetStatus.PASS, BudgetStatus.UNCERTAIN)
    assert "MDE" in g.results[0].message  # the budget is below what 3 runs can see


def test_a_noise_budget_is_k_times_the_measured_spread(tmp_path: Path):
    a = _group(tmp_path, "a", BASE)
    same = _group(tmp_path, "same", [99.0, 104.0, 98.0])
    slow = _group(tmp_path, "slow", [m * 1.3 for m in BASE])
    g = run_gate(slow, NOISE, baseline=a)
    r = g.results[0]
    assert r.status is BudgetStatus.BREACH
    comp = g.comparison
    assert comp is not None
    spread = comp.metric("ttft_p50").spread
    assert 0.02 < spread < 0.08  # the sd of log(100, 106, 96) is 0.05, pooled with slow's
    assert f"spread {spread:.1%}" in r.message
    assert run_gate(same, NOISE, baseline=a).exit_code == 0


def test_a_noise_budget_without_repeats_is_invalid_input(tmp_path: Path):
    a = _arm(tmp_path, "a", [100.0])
    b = _arm(tmp_path, "b", [150.0])
    g = run_gate(b[0], NOISE, baseline=a[0])
    assert g.exit_code == 2
    assert g.results[0].status is BudgetStatus.MISSING
    assert "needs the run-to-run spread" in g.results[0].message


def test_the_store_keeps_its_repeats_and_one_candidate_run_is_judged_by_them(tmp_path: Path):
    store = tmp_path / "store"
    _group(store, "old", [300.0, 310.0])
    newest = _group(store, "main", BASE)
    assert latest_baseline(store) == newest
    cand = _arm(tmp_path, "c", [140.0])[0]
    g = run_gate(cand, BUDGET, baseline_store=store)
    assert g.comparison is not None
    assert g.comparison.runs == (3, 1)
    assert g.exit_code == 1
    assert latest_baseline(store, exclude=newest / "r1") == store / "old"


def test_the_cli_takes_groups_and_comma_separated_runs(tmp_path: Path, capsys):
    a = _group(tmp_path, "a", BASE)
    b = _arm(tmp_path, "b", [m * 1.25 for m in BASE])
    budgets = tmp_path / "budgets.toml"
    budgets.write_text('[budgets]\nttft_p50 = "+10%"\n[validity]\nmin_requests = 20\n')
    assert gate_entry(b, budgets=budgets, baseline=a) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "3/3 runs" in out
    comma = Path(",".join(str(p) for p in b))
    assert gate_entry([a / "r0"], budgets=budgets, baseline=comma) == 0  # A's run is faster
    assert gate_entry([a / "r0"], budgets=budgets, baseline=a) == 2  # in both arms
    assert "is both a baseline and a candidate run" in capsys.readouterr().err
