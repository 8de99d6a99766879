"""The gate on runs whose distributions the test chooses: no false alarm on noise, a named
breach on a real slowdown, and exit code 2 for every kind of input that cannot be judged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analyzers.budgets import parse_budgets
from analyzers.gate import (
    EXIT_INVALID,
    EXIT_PASS,
    EXIT_REGRESSION,
    BudgetStatus,
    GateResult,
    latest_baseline,
    run_gate,
)
from servescope.rundir.layout import RunDirError
from servescope.rundir.reader import RunData
from tests.analyzers._gate_runs import edit_manifest, lognormal_ms, synthetic_run

N = 400
BUDGETS = parse_budgets("""
[budgets]
ttft_p50 = "+10%"
ttft_p99 = "+25%"
e2e_p50 = "+10%"
itl_p50 = "+10%"
output_throughput = "-10%"
error_rate = "<= 1%"
""")


def _run(root: Path, name: str, seed: int = 1, scale: float = 1.0, n: int = N,
         **kw: Any) -> RunData:
    return synthetic_run(root, name, lognormal_ms(n, 50, 0.4, seed) * scale,
                         lognormal_ms(n, 5, 0.2, seed + 100) * scale, **kw)


def _status(result: GateResult) -> dict[tuple[str, str], BudgetStatus]:
    return {(r.budget.metric, r.budget.text): r.status for r in result.results}


def test_two_runs_of_one_configuration_pass(tmp_path):
    _run(tmp_path, "a", seed=1)
    _run(tmp_path, "b", seed=2)
    g = run_gate(tmp_path / "b", BUDGETS, baseline=tmp_path / "a")
    assert g.exit_code == EXIT_PASS, g
    assert g.issues == ()
    assert g.breaches() == ()
    assert g.verdict == "pass"


def test_no_false_alarm_over_many_noise_pairs(tmp_path):
    """Twelve pairs of runs drawn from one population, with tight 5 % budgets on the medians:
    the point estimates exceed 5 % now and then, but no budget is breached."""
    tight = parse_budgets('[budgets]\nttft_p50 = "+5%"\ne2e_p50 = "+5%"\n'
                          'output_throughput = "-5%"\n')
    above = 0
    for i in range(12):
        _run(tmp_path, f"a{i}", seed=1000 + i)
        _run(tmp_path, f"b{i}", seed=2000 + i)
        g = run_gate(tmp_path / f"b{i}", tight, baseline=tmp_path / f"a{i}")
        assert g.exit_code == EXIT_PASS, [(r.budget.describe(), r.change) for r in g.results]
        above += sum(r.status is BudgetStatus.UNCERTAIN for r in g.results)
    assert above >= 1  # the point estimate alone would have cried wolf


def test_a_twice_slower_candidate_fails_naming_the_latency_budgets(tmp_path):
    _run(tmp_path, "a", seed=1)
    _run(tmp_path, "b", seed=2, scale=2.0)
    g = run_gate(tmp_path / "b", BUDGETS, baseline=tmp_path / "a")
    assert g.exit_code == EXIT_REGRESSION
    breached = {r.budget.metric for r in g.breaches()}
    assert {"ttft_p50", "e2e_p50", "itl_p50"} <= breached
    assert "error_rate" not in breached
    r = next(r for r in g.results if r.budget.metric == "ttft_p50")
    assert r.change is not None
    assert r.change.contains(1.0)  # the true change: +100 %
    assert r.change.low > 0.10


def test_a_small_run_is_uncertain_not_failed(tmp_path):
    """Exactly +30 % on 40 requests: beyond the +10 % and +25 % budgets, but the intervals of
    so few requests reach back inside them; with 400 requests the same change fails."""
    ttft = lognormal_ms(40, 50, 0.4, 1)
    synthetic_run(tmp_path, "a", ttft, 5.0)
    synthetic_run(tmp_path, "b", ttft * 1.3, 5.0)
    g = run_gate(tmp_path / "b", BUDGETS, baseline=tmp_path / "a")
    for key in (("ttft_p99", "+25%"), ("ttft_p50", "+10%")):
        assert _status(g)[key] is BudgetStatus.UNCERTAIN
    r = next(r for r in g.results if r.budget.metric == "ttft_p50")
    assert r.change is not None
    assert r.change.estimate == pytest.approx(0.3, abs=1e-6)
    assert g.exit_code == EXIT_PASS
    _run(tmp_path, "a400", seed=1)
    _run(tmp_path, "b400", seed=1, scale=1.3)
    g = run_gate(tmp_path / "b400", BUDGETS, baseline=tmp_path / "a400")
    assert _status(g)[("ttft_p50", "+10%")] is BudgetStatus.BREACH


def test_absolute_limit_on_the_error_rate(tmp_path):
    _run(tmp_path, "a", seed=1)
    _run(tmp_path, "b", seed=2, failed=range(0, N, 25))  # 4 %
    g = run_gate(tmp_path / "b", BUDGETS, baseline=tmp_path / "a")
    r = next(r for r in g.results if r.budget.metric == "error_rate")
    assert (r.candidate, r.status) == (0.04, BudgetStatus.BREACH)
    assert g.exit_code == EXIT_REGRESSION


def test_intervals_are_simultaneous_over_the_relative_budgets(tmp_path):
    _run(tmp_path, "a", seed=1)
    _run(tmp_path, "b", seed=2)
    g = run_gate(tmp_path / "b", BUDGETS, baseline=tmp_path / "a")
    assert g.confidence == pytest.approx(1 - 0.05 / 5)  # five relative budgets
    r = next(r for r in g.results if r.budget.metric == "ttft_p50")
    assert r.change is not None
    assert r.change.confidence == pytest.approx(0.99)


# ---------------------------------------------------------------- invalid input: exit 2


def _issues(g: GateResult) -> set[tuple[str, str]]:
    return {(i.run, i.check) for i in g.issues}


@pytest.mark.parametrize(("edit", "check"), [
    ({"status": "interrupted"}, "status"),
    ({"status": "running"}, "status"),
])
def test_incomplete_candidate_is_invalid(tmp_path, edit, check):
    _run(tmp_path, "a")
    _run(tmp_path, "b", seed=2, manifest=edit)
    g = run_gate(tmp_path / "b", BUDGETS, baseline=tmp_path / "a")
    assert g.exit_code == EXIT_INVALID
    assert ("candidate", check) in _issues(g)
    assert g.results == ()


def test_empty_run_is_invalid(tmp_path):
    _run(tmp_path, "a")
    synthetic_run(tmp_path, "b", [])
    g = run_gate(tmp_path / "b", BUDGETS, baseline=tmp_path / "a")
    assert g.exit_code == EXIT_INVALID
    assert _issues(g) == {("candidate", "empty")}


def test_too_few_requests_too_many_errors_and_a_late_client_are_invalid(tmp_path):
    _run(tmp_path, "a")
    _run(tmp_path, "few", n=10)
    _run(tmp_path, "errors", failed=range(0, N, 5))  # 20 % > the default 5 %
    lag = np.zeros(N)
    lag[N // 2:] = 40.0  # p99 schedule lag 40 ms > the default 10 ms
    _run(tmp_path, "late", lag_ms=lag)
    for name, check in (("few", "requests"), ("errors", "errors"), ("late", "schedule")):
        g = run_gate(tmp_path / name, BUDGETS, baseline=tmp_path / "a")
        assert g.exit_code == EXIT_INVALID, name
        assert _issues(g) == {("candidate", check)}, name
        assert name in g.issues[0].message or check in g.issues[0].check


def test_an_invalid_baseline_is_invalid_too(tmp_path):
    _run(tmp_path, "a", failed=range(0, N, 5))
    _run(tmp_path, "b", seed=2)
    g = run_gate(tmp_path / "b", BUDGETS, baseline=tmp_path / "a")
    assert _issues(g) == {("baseline", "errors")}
    assert g.exit_code == EXIT_INVALID


def test_missing_and_non_run_baselines(tmp_path):
    _run(tmp_path, "b")
    (tmp_path / "not-a-run").mkdir()
    for path, text in ((tmp_path / "nope", "does not exist"),
                       (tmp_path / "not-a-run", "not a servescope run directory")):
        g = run_gate(tmp_path / "b", BUDGETS, baseline=path)
        assert g.exit_code == EXIT_INVALID
        assert _issues(g) == {("baseline", "unreadable")}
        assert text in g.issues[0].message


def test_newer_schema_is_invalid_with_a_clear_message(tmp_path):
    _run(tmp_path, "a")
    edit_manifest(_run(tmp_path, "b", seed=2).path, {"schema_version": 99})
    g = run_gate(tmp_path / "b", BUDGETS, baseline=tmp_path / "a")
    assert g.exit_code == EXIT_INVALID
    assert "newer than this servescope understands" in g.issues[0].message


def test_a_budget_on_a_metric_the_runs_lack_is_invalid(tmp_path):
    _run(tmp_path, "a")
    _run(tmp_path, "b", seed=2)
    g = run_gate(tmp_path / "b", parse_budgets('[budgets]\nkv_usage_max = "<= 0.9"\n'),
                 baseline=tmp_path / "a")
    assert [r.status for r in g.results] == [BudgetStatus.MISSING]
    assert g.exit_code == EXIT_INVALID


def test_validity_thresholds_come_from_the_budgets_file(tmp_path):
    _run(tmp_path, "a")
    _run(tmp_path, "b", seed=2, n=10, failed=[0, 1])  # 10 requests, 20 % errors
    lenient = parse_budgets('[budgets]\nttft_p50 = "+50%"\n'
                            '[validity]\nmin_requests = 5\nmax_error_rate = "25%"\n')
    assert run_gate(tmp_path / "b", lenient, baseline=tmp_path / "a").issues == ()


# ---------------------------------------------------------------------- baseline store


def test_latest_complete_run_of_a_store(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    for name, start, status in (("old", 100, "complete"), ("new", 300, "complete"),
                                ("newest-but-killed", 400, "running"),
                                ("middle", 200, "complete")):
        _run(store, name, manifest={"started_wall_ns": start, "status": status})
    (store / "junk").mkdir()
    assert latest_baseline(store).name == "new"
    assert latest_baseline(store, exclude=store / "new").name == "middle"
    g = run_gate(store / "new", BUDGETS, baseline_store=store)
    assert g.baseline is not None
    assert g.baseline.run_id == "middle"  # never the candidate itself
    assert any("newest complete run" in n for n in g.notes)


def test_empty_or_missing_store(tmp_path):
    (tmp_path / "store").mkdir()
    with pytest.raises(RunDirError, match="holds no complete run"):
        latest_baseline(tmp_path / "store")
    _run(tmp_path, "b")
    g = run_gate(tmp_path / "b", BUDGETS, baseline_store=tmp_path / "nowhere")
    assert g.exit_code == EXIT_INVALID
    assert "does not exist" in g.issues[0].message


def test_exactly_one_baseline(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        run_gate(tmp_path, BUDGETS)


def test_result_is_json_ready(tmp_path):
    from reports.jsonable import to_jsonable

    _run(tmp_path, "a")
    _run(tmp_path, "b", seed=2, scale=2.0)
    g = run_gate(tmp_path / "b", BUDGETS, baseline=tmp_path / "a")
    data = json.loads(json.dumps(to_jsonable(g), allow_nan=False))
    assert data["exit_code"] == 1
    assert data["verdict"] == "regression"
    statuses = {r["budget"]["metric"]: r["status"] for r in data["results"]}
    assert statuses["ttft_p50"] == "breach"

