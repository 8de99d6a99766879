"""Interleaved rounds judged paired (``analyzers.between_runs``: ``interleaved_pairs`` and the
per-round differences). Ground truth: runs whose per-round values the test sets, with a
machine drift from round to round that both arms share."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

from analyzers.between_runs import METHOD_PAIRED, between_runs, interleaved_pairs
from analyzers.compare import CompareSettings, Verdict
from analyzers.compare_groups import compare_arms
from analyzers.metric_catalog import get_metric
from analyzers.run_samples import RunSamples
from tests.analyzers._gate_runs import edit_manifest
from tests.analyzers.test_between_runs import TTFT, _arm

S = 1_000_000_000  # 1 s in ns


def test_rounds_are_found_from_the_start_times_whatever_the_order_within_a_round():
    assert interleaved_pairs([0, 20, 40], [10, 30, 50]) == [(0, 0), (1, 1), (2, 2)]
    # B first in round 2; the arms' lists out of time order
    assert interleaved_pairs([40, 0, 25], [10, 50, 20]) == [(1, 0), (2, 2), (0, 1)]
    assert interleaved_pairs([0, 10, 20], [30, 40, 50]) is None  # all of A, then all of B
    assert interleaved_pairs([0, 10, 30], [20, 40, 50]) is None  # A A B A B B
    assert interleaved_pairs([0, 20], [10, 30, 40]) is None  # unequal counts
    assert interleaved_pairs([0], [10]) is None
    assert interleaved_pairs([5, 5], [5, 5]) is None  # no order to read


def _timed(paths: list[Path], starts_s: list[int]) -> None:
    for p, t in zip(paths, starts_s, strict=True):
        edit_manifest(p, {"started_wall_ns": 1_700_000_000 * S + t * S})


def test_a_drifting_machine_hides_a_regression_unpaired_and_pairing_finds_it(tmp_path: Path):
    drift = [100.0, 135.0, 175.0]  # the machine slows by 75 % over the three rounds
    ratio = [1.26, 1.14, 1.20]  # B is ~20 % slower than A in every round
    a = _arm(tmp_path, "a", drift)
    b = _arm(tmp_path, "b", [d * r for d, r in zip(drift, ratio, strict=True)])
    _timed(a, [0, 20, 40])
    _timed(b, [10, 30, 50])  # A B | A B | A B
    paired = compare_arms(a, b, metrics=TTFT).metric("ttft_p50")
    assert paired.test == METHOD_PAIRED
    assert paired.change.method.endswith("(3 rounds, 2 df)")
    d = np.log(ratio)
    assert paired.change.estimate == pytest.approx(math.expm1(d.mean()), rel=1e-9)
    se = d.std(ddof=1) / math.sqrt(3)  # above the within-run floor (~0.011) here
    from scipy.stats import t

    q = t.ppf(0.975, 2)
    assert paired.change.low == pytest.approx(math.expm1(d.mean() - q * se), rel=1e-6)
    assert paired.change.high == pytest.approx(math.expm1(d.mean() + q * se), rel=1e-6)
    assert paired.verdict is Verdict.REGRESSED
    unpaired = compare_arms(a, b, metrics=TTFT, settings=CompareSettings(pair_rounds=False)
                            ).metric("ttft_p50")
    assert unpaired.test != METHOD_PAIRED
    assert unpaired.change.low < 0 < unpaired.change.high  # the drift swamps it
    assert unpaired.verdict is not Verdict.REGRESSED
    _timed(b, [60, 70, 80])  # all of A, then all of B: nothing to pair
    assert compare_arms(a, b, metrics=TTFT).metric("ttft_p50").test != METHOD_PAIRED


def test_identical_ratios_leave_the_within_run_noise_as_the_floor(tmp_path: Path):
    drift = [100.0, 120.0, 90.0]
    a = _arm(tmp_path, "a", drift)
    b = _arm(tmp_path, "b", [d * 1.1 for d in drift])
    _timed(a, [0, 20, 40])
    _timed(b, [10, 30, 50])
    model = cast(dict[str, Any], between_runs(
        [get_metric("ttft_p50")], *[[_samples(p) for p in arm] for arm in (a, b)],
        pairs=[(0, 0), (1, 1), (2, 2)]))["ttft_p50"]
    assert model.change.estimate == pytest.approx(0.1, rel=1e-9)
    assert model.within_sd > 0
    assert model.se == pytest.approx(math.sqrt(2 / 3) * model.within_sd, rel=1e-9)
    assert model.change.low < model.change.estimate < model.change.high


def _samples(p: Path) -> RunSamples:
    from analyzers.run_samples import run_samples

    return run_samples(p)


def _fake(median: float, rng: np.random.Generator, n: int = 61) -> RunSamples:
    ttft = median * np.exp(0.05 * rng.standard_normal(n))
    summary = SimpleNamespace(latency=SimpleNamespace(ttft_ns=SimpleNamespace(
        p50=float(np.percentile(ttft, 50)))))
    return cast(RunSamples, SimpleNamespace(summary=summary, latency_ns={"ttft_ns": ttft}))


def _rates(n: int, effect: float, drift_sd: float, sd: float, trials: int, seed: int
           ) -> tuple[float, float]:
    """(paired, unpaired) shares of trials whose 95 % interval puts the change above 0: a
    machine drift of ``drift_sd`` (log) per round shared by the round's two runs, and
    ``sd`` of each run's own."""
    rng = np.random.default_rng(seed)
    spec = get_metric("ttft_p50")
    pairs = [(i, i) for i in range(n)]
    hits = [0, 0]
    for k in range(trials):
        drift = drift_sd * rng.standard_normal(n)
        a = [_fake(100 * math.exp(x + sd * rng.standard_normal()), rng) for x in drift]
        b = [_fake(100 * (1 + effect) * math.exp(x + sd * rng.standard_normal()), rng)
             for x in drift]
        for j, pr in enumerate((pairs, None)):
            m = cast(dict[str, Any], between_runs([spec], a, b, n_resamples=200, seed=k,
                                                  pairs=pr))["ttft_p50"]
            hits[j] += m.change.low > 0
    return hits[0] / trials, hits[1] / trials


def test_the_paired_models_false_alarms_and_power_match_its_nominal_levels():
    # drift 10 % per round, 3 % of each run's own, 3 rounds: the paired se is
    # ~0.03 * sqrt(2/3) = 0.025 with 2 df, the MDE (90 % power) ~(4.30 + 1.89) * 0.025 = 16 %;
    # unpaired the drift stays in (se ~0.085, MDE ~+44 %). Nominal false alarms: 2.5 %.
    # Measured: false alarms 2.7 % paired, 0 % unpaired; power at +20 % 90 % paired, 45 %
    # unpaired (the MDE formula is the normal approximation of a noncentral t: at 2 df it is
    # a little optimistic).
    fa_p, fa_u = _rates(3, 0.0, 0.10, 0.03, 300, 11)
    assert fa_p <= 0.045
    assert fa_u <= 0.045
    pw_p, pw_u = _rates(3, 0.20, 0.10, 0.03, 120, 12)
    assert pw_p >= 0.85
    assert pw_u <= 0.6


def test_the_budgets_file_turns_pairing_off_and_rejects_a_non_boolean(tmp_path: Path):
    from analyzers.budgets import BudgetError, parse_budgets
    from analyzers.gate import run_gate

    drift = [100.0, 135.0, 175.0]
    a = _arm(tmp_path, "a", drift)
    b = _arm(tmp_path, "b", [d * r for d, r in zip(drift, [1.26, 1.14, 1.20], strict=True)])
    _timed(a, [0, 20, 40])
    _timed(b, [10, 30, 50])
    text = '[budgets]\nttft_p50 = "+10%"\n[validity]\nmin_requests = 20\n[settings]\n'
    paired = run_gate(b, parse_budgets(text), baseline=a)
    unpaired = run_gate(b, parse_budgets(text + "pair_rounds = false\n"), baseline=a)
    assert paired.exit_code == 1  # the drift cancels within the rounds
    assert unpaired.exit_code == 0  # unpaired, the drift hides the +20 %
    assert paired.comparison is not None
    assert unpaired.comparison is not None
    assert paired.comparison.metric("ttft_p50").test == METHOD_PAIRED
    assert unpaired.comparison.metric("ttft_p50").test != METHOD_PAIRED
    with pytest.raises(BudgetError, match="pair_rounds must be true or false"):
        parse_budgets(text + 'pair_rounds = "yes"\n')
