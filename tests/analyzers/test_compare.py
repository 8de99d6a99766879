"""compare_runs on runs whose distributions the test chooses (written through the real writer),
the verdict rule, the multiplicity correction and the manifest diff."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analyzers.bootstrap import Interval
from analyzers.compare import CompareSettings, Verdict, compare_runs, judge
from analyzers.goodput import SLO
from analyzers.manifest_diff import MISSING, engine_settings, manifest_diff
from analyzers.metric_catalog import CATALOG, Direction, UnknownMetricError
from analyzers.significance import Correction, adjust_pvalues, proportion_test
from analyzers.summary import summarize
from servescope.rundir.reader import RunData, load_run
from tests.analyzers._gate_runs import (
    add_engine,
    edit_manifest,
    lognormal_ms,
    synthetic_run,
    vllm_page,
)

N = 400
LATENCY = ("ttft", "itl", "tpot", "e2e")


def _base(tmp_path: Path, name: str = "a", seed: int = 1, scale: float = 1.0,
          **kw: Any) -> RunData:
    return synthetic_run(tmp_path, name, lognormal_ms(N, 50, 0.4, seed) * scale,
                         lognormal_ms(N, 5, 0.2, seed + 100), **kw)


def test_ttft_scaled_by_1_2_is_a_ttft_regression_with_the_true_change_in_its_interval(tmp_path):
    ttft = lognormal_ms(N, 50, 0.4, 1)
    itl = lognormal_ms(N, 5, 0.2, 2)
    synthetic_run(tmp_path, "a", ttft, itl)
    synthetic_run(tmp_path, "b", ttft * 1.2, itl)
    c = compare_runs(tmp_path / "a", tmp_path / "b")
    for name in ("ttft_p50", "ttft_p90"):
        m = c.metric(name)
        assert m.change.estimate == pytest.approx(0.2, abs=1e-6)  # timestamps are whole ns
        assert m.change.low < 0.2 < m.change.high
        assert m.change.low > 0.05
        assert m.verdict is Verdict.REGRESSED
        assert m.p_adjusted < 1e-6
    assert c.metric("ttft_p99").change.contains(0.2)
    # the ITL samples are identical: same numbers, nothing regressed
    for q in (50, 90, 99):
        m = c.metric(f"itl_p{q}")
        assert m.baseline == m.candidate
        assert m.verdict is not Verdict.REGRESSED
    assert c.metric("e2e_p50").verdict is Verdict.REGRESSED


def test_same_distribution_other_seed_regresses_and_improves_nothing(tmp_path):
    _base(tmp_path, "a", seed=1)
    _base(tmp_path, "b", seed=7)
    c = compare_runs(tmp_path / "a", tmp_path / "b")
    assert c.with_verdict(Verdict.REGRESSED) == ()
    assert c.with_verdict(Verdict.IMPROVED) == ()
    for m in c.metrics:  # the 95 % intervals contain the true change, 0
        if not math.isnan(m.change.low):
            assert m.change.contains(0.0), m


def test_faster_candidate_is_improved(tmp_path):
    _base(tmp_path, "a")
    _base(tmp_path, "b", scale=0.7)
    c = compare_runs(tmp_path / "a", tmp_path / "b")
    m = c.metric("ttft_p50")
    assert m.verdict is Verdict.IMPROVED
    assert m.change.contains(-0.3)


def test_point_values_are_the_summary_values(tmp_path):
    _base(tmp_path, "a")
    _base(tmp_path, "b", seed=3)
    c = compare_runs(tmp_path / "a", tmp_path / "b")
    sa, sb = summarize(load_run(tmp_path / "a")), summarize(load_run(tmp_path / "b"))
    assert c.metric("ttft_p99").baseline == sa.latency.ttft_ns.p99
    assert c.metric("itl_p50").candidate == sb.latency.itl_per_token_ns.p50
    assert c.metric("output_throughput").baseline == sa.output_token_throughput_per_s
    assert c.metric("request_throughput").candidate == sb.request_throughput_per_s
    est = c.metric("output_throughput").change.estimate
    assert est == pytest.approx(sb.output_token_throughput_per_s
                                / sa.output_token_throughput_per_s - 1)


def test_halved_send_rate_is_a_throughput_regression(tmp_path):
    """B sends a request every 20 ms instead of 10: request throughput falls to about half."""
    _base(tmp_path, "a")
    _base(tmp_path, "b", gap_ms=20.0)
    c = compare_runs(tmp_path / "a", tmp_path / "b")
    for name in ("request_throughput", "output_throughput"):
        m = c.metric(name)
        assert m.change.estimate == pytest.approx(-0.5, abs=0.03)
        assert m.change.contains(m.change.estimate)
        assert m.change.high < -0.3
        assert m.verdict is Verdict.REGRESSED
    assert c.metric("ttft_p50").verdict is not Verdict.REGRESSED


def test_error_rate_from_0_to_10_percent_regresses(tmp_path):
    _base(tmp_path, "a")
    _base(tmp_path, "b", failed=range(0, N, 10))
    m = compare_runs(tmp_path / "a", tmp_path / "b").metric("error_rate")
    assert (m.baseline, m.candidate) == (0.0, 0.1)
    assert m.change.estimate == pytest.approx(0.1)
    assert m.change.low > 0.01
    assert m.verdict is Verdict.REGRESSED
    assert "Fisher" in m.test


def test_goodput_is_compared_only_with_an_slo(tmp_path):
    _base(tmp_path, "a")
    _base(tmp_path, "b", scale=2.0)
    plain = compare_runs(tmp_path / "a", tmp_path / "b")
    assert "goodput_frac" not in {m.name for m in plain.metrics}
    c = compare_runs(tmp_path / "a", tmp_path / "b", slo=SLO(ttft_ms=80))
    a = c.metric("goodput_frac")
    ttft_a = lognormal_ms(N, 50, 0.4, 1)
    assert a.baseline == pytest.approx(np.mean(ttft_a <= 80), abs=1 / N)
    assert a.candidate == pytest.approx(np.mean(ttft_a * 2 <= 80), abs=1 / N)
    assert a.verdict is Verdict.REGRESSED
    assert c.metric("goodput").verdict is Verdict.REGRESSED


def test_engine_side_metrics_compared_when_both_runs_have_them(tmp_path):
    """Server TTFT: A's 100 observations all in (20, 40] ms, B's in (80, 100] ms. The change
    the buckets allow is 80/40 − 1 = +100 % to 100/20 − 1 = +400 %; the interpolated p50s are
    30 and 90 ms (+200 %)."""
    a = _base(tmp_path, "a")
    b = _base(tmp_path, "b", seed=5)
    zero = vllm_page(ttft_buckets={0.02: 0, 0.04: 0, 0.08: 0, 0.1: 0}, kv_usage=0.0,
                     preemptions=0)
    add_engine(a, [(-100, zero), (10_000, vllm_page(
        ttft_buckets={0.02: 0, 0.04: 100, 0.08: 100, 0.1: 100}, kv_usage=0.2, preemptions=0))])
    add_engine(b, [(-100, zero), (10_000, vllm_page(
        ttft_buckets={0.02: 0, 0.04: 0, 0.08: 0, 0.1: 100}, kv_usage=0.5, preemptions=5))])
    c = compare_runs(tmp_path / "a", tmp_path / "b")
    m = c.metric("server_ttft_p50")
    assert m.baseline == pytest.approx(30e6)
    assert m.candidate == pytest.approx(90e6)
    assert m.change.estimate == pytest.approx(2.0)
    assert m.change.low == pytest.approx(1.0)
    assert m.change.high == pytest.approx(4.0)
    assert m.verdict is Verdict.REGRESSED
    kv = c.metric("kv_usage_max")
    assert (kv.baseline, kv.candidate) == (0.2, 0.5)
    assert kv.change.estimate == pytest.approx(0.3)
    assert kv.verdict is Verdict.NOT_TESTED
    pre = c.metric("preemptions")
    assert (pre.baseline, pre.candidate) == (0.0, 5.0)
    assert not any("engine metrics not compared" in w for w in c.warnings)


def test_engine_metrics_skipped_with_a_warning_when_a_run_has_none(tmp_path):
    _base(tmp_path, "a")
    _base(tmp_path, "b", seed=5)
    c = compare_runs(tmp_path / "a", tmp_path / "b")
    assert not any(m.spec.kind.value in ("engine", "server_percentile") for m in c.metrics)
    assert any("engine metrics not compared" in w for w in c.warnings)


def test_restricting_metrics_and_unknown_names(tmp_path):
    _base(tmp_path, "a")
    _base(tmp_path, "b", seed=5)
    c = compare_runs(tmp_path / "a", tmp_path / "b", metrics=["ttft_p99", "error_rate"])
    assert [m.name for m in c.metrics] == ["ttft_p99", "error_rate"]
    with pytest.raises(UnknownMetricError, match="did you mean ttft_p99"):
        compare_runs(tmp_path / "a", tmp_path / "b", metrics=["ttft_p999"])


def test_minimum_effect_decides_between_regressed_and_unchanged(tmp_path):
    """A +3 % change measured on 4000 requests: significant, but below a 5 % minimum effect
    it is not a regression; with a 1 % minimum effect it is."""
    n = 4000
    ttft = lognormal_ms(n, 50, 0.2, 1)
    synthetic_run(tmp_path, "a", ttft, 5.0, gap_ms=1.0)
    synthetic_run(tmp_path, "b", ttft * 1.03, 5.0, gap_ms=1.0)
    strict = compare_runs(tmp_path / "a", tmp_path / "b", metrics=["ttft_p50"],
                          settings=CompareSettings(min_effect_frac=0.01)).metric("ttft_p50")
    loose = compare_runs(tmp_path / "a", tmp_path / "b",
                         metrics=["ttft_p50"]).metric("ttft_p50")
    assert strict.verdict is Verdict.REGRESSED
    assert loose.verdict is Verdict.UNCHANGED
    assert loose.change.low > 0.0  # a real change, just a small one


def _ci(lo: float, hi: float) -> Interval:
    return Interval((lo + hi) / 2, lo, hi, 0.95, 100, "test")


@pytest.mark.parametrize(("lo", "hi", "p", "direction", "want"), [
    (0.10, 0.30, 0.001, Direction.LOWER, Verdict.REGRESSED),
    (0.10, 0.30, 0.2, Direction.LOWER, Verdict.INCONCLUSIVE),  # not significant
    (0.02, 0.30, 0.001, Direction.LOWER, Verdict.INCONCLUSIVE),  # straddles +5 %
    (-0.30, -0.10, 0.001, Direction.LOWER, Verdict.IMPROVED),
    (-0.30, -0.10, 0.001, Direction.HIGHER, Verdict.REGRESSED),
    (0.10, 0.30, 0.001, Direction.HIGHER, Verdict.IMPROVED),
    (-0.04, 0.04, 0.001, Direction.LOWER, Verdict.UNCHANGED),  # significant, too small
    (-0.04, 0.04, 0.9, Direction.HIGHER, Verdict.UNCHANGED),
    (-0.20, 0.20, 0.9, Direction.LOWER, Verdict.INCONCLUSIVE),
    (math.nan, math.nan, 0.001, Direction.LOWER, Verdict.NOT_TESTED),
    (0.10, 0.30, math.nan, Direction.LOWER, Verdict.INCONCLUSIVE),
])
def test_verdict_rule(lo, hi, p, direction, want):
    assert judge(_ci(lo, hi), p, direction, 0.05, 0.05) is want


def test_holm_and_bh_adjustment():
    ps = [0.01, 0.04, 0.03, math.nan]
    # Holm: sorted 0.01·3, 0.03·2, 0.04·1 → 0.03, 0.06, max(0.06, 0.04)
    assert adjust_pvalues(ps, Correction.HOLM)[:3] == pytest.approx([0.03, 0.06, 0.06])
    # BH: 0.01·3/1, 0.03·3/2, 0.04·3/3 → 0.03, 0.04, 0.04 (made monotone from the top)
    assert adjust_pvalues(ps, Correction.BH)[:3] == pytest.approx([0.03, 0.04, 0.04])
    assert math.isnan(adjust_pvalues(ps)[3])


def test_shared_tests_count_once_in_the_correction(tmp_path):
    """The three TTFT percentiles share one rank test: Holm runs over the 7 distinct tests
    (rank tests of TTFT, ITL, TPOT, E2E; Welch on output and request slices; Fisher on
    errors), not over the 15 rows."""
    _base(tmp_path, "a")
    _base(tmp_path, "b", scale=1.1)
    c = compare_runs(tmp_path / "a", tmp_path / "b")
    ttft = [c.metric(f"ttft_p{q}") for q in (50, 90, 99)]
    assert len({m.p_adjusted for m in ttft}) == 1
    tests = {(m.test, m.p_value) for m in c.metrics if m.test}
    assert len(tests) == 7
    raw = [p for _, p in sorted(tests)]
    want = dict(zip(raw, adjust_pvalues(raw), strict=True))
    for m in c.metrics:
        assert m.p_adjusted == pytest.approx(want[m.p_value]), m.name


def test_newcombe_interval_of_a_known_case():
    """Newcombe (1998) table II, example (a): 56/70 vs 48/80 → difference 0.2000, 95 % CI
    0.0524 to 0.3339 (method 10)."""
    ci, p = proportion_test(48, 80, 56, 70)
    assert ci.estimate == pytest.approx(0.2)
    assert ci.low == pytest.approx(0.0524, abs=5e-4)
    assert ci.high == pytest.approx(0.3339, abs=5e-4)
    assert 0 < p < 0.05


def test_catalog_names_are_unique_and_directions_sensible():
    assert len(CATALOG) == len(set(CATALOG))
    for name, spec in CATALOG.items():
        if name.startswith(LATENCY) or name in ("error_rate", "preemptions"):
            assert spec.direction is Direction.LOWER, name
    for name in ("output_throughput", "request_throughput", "goodput", "goodput_frac"):
        assert CATALOG[name].direction is Direction.HIGHER


# ----------------------------------------------------------------------- manifest diff


def test_manifest_diff_names_changed_engine_flags_env_and_workload(tmp_path):
    base_cmd = ["env", "VLLM_CPU_KVCACHE_SPACE=1", "vllm", "serve", "/models/tiny",
                "--port", "8001", "--max-num-seqs", "256", "--enforce-eager"]
    cand_cmd = ["env", "VLLM_CPU_KVCACHE_SPACE=4", "vllm", "serve", "/models/tiny",
                "--port", "9002", "--max-num-seqs=1"]
    a = _base(tmp_path, "a", manifest={"engine": {
        "name": "vllm", "command": base_cmd, "version": "0.32.0", "ready_s": 30.0,
        "base_url": "http://127.0.0.1:8001"}, "workload": {"arrival": {"concurrency": 4}}})
    b = _base(tmp_path, "b", manifest={"engine": {
        "name": "vllm", "command": cand_cmd, "version": "0.33.0", "ready_s": 31.0,
        "base_url": "http://127.0.0.1:9002"}, "workload": {"arrival": {"concurrency": 8}}})
    changes = {c.key: (c.baseline, c.candidate) for c in manifest_diff(a.manifest, b.manifest)}
    assert changes == {
        "engine.env.VLLM_CPU_KVCACHE_SPACE": ("1", "4"),
        "engine.flag.--max-num-seqs": ("256", "1"),
        "engine.flag.--enforce-eager": ("true", MISSING),
        "engine.version": ("0.32.0", "0.33.0"),
        "workload.arrival.concurrency": ("4", "8"),
    }
    c = compare_runs(a.path, b.path, metrics=["ttft_p50"])
    assert any("workloads differ" in w for w in c.warnings)


def test_manifest_diff_host_gpus_and_versions(tmp_path):
    a = _base(tmp_path, "a")
    b = _base(tmp_path, "b", seed=2)
    gpus = {"driver_version": "550.54",
            "devices": [{"index": 0, "name": "NVIDIA H100", "memory_bytes": 8}]}
    edit_manifest(b.path, {"gpus": gpus, "servescope_version": "9.9.9"})
    changes = {c.key: (c.baseline, c.candidate)
               for c in manifest_diff(a.manifest, load_run(b.path).manifest)}
    assert changes["gpus.driver_version"] == ("", "550.54")
    assert changes["gpus.devices[0].name"] == (MISSING, "NVIDIA H100")
    assert changes["servescope_version"][1] == "9.9.9"
    assert "run_id" not in changes  # differs between any two runs: left out


def test_engine_settings_parse_flags_switches_and_positionals():
    got = engine_settings(["env", "A=1", "B=x=y", "python", "-m", "sglang.launch_server",
                           "--model-path", "m", "--tp=2", "--enable-metrics", "--port", "1",
                           "--offset", "-5"])
    assert got == {"engine.env.A": "1", "engine.env.B": "x=y", "engine.arg[0]": "python",
                   "engine.flag.-m": "sglang.launch_server", "engine.flag.--model-path": "m",
                   "engine.flag.--tp": "2", "engine.flag.--enable-metrics": "true",
                   "engine.flag.--offset": "-5"}
