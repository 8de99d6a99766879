"""The budgets file: every form it accepts, and an error naming the line for every mistake."""

from __future__ import annotations

import pytest

from analyzers.budgets import BudgetError, BudgetKind, load_budgets, parse_budgets
from analyzers.goodput import SLO

FULL = """\
# budgets for the nightly gate
[budgets]
ttft_p99 = "+10%"
output_throughput = "-5%"
e2e_p50 = "7.5%"
error_rate = "<= 0.1%"
goodput_frac = ">= 95%"
goodput = ">= 2.5 req/s"
tpot_p50 = ["+10%", "<= 40 ms"]
itl_p99 = "<= 0.2 s"
kv_usage_max = "<= 0.9"
preemptions = "<= 0"

[slo]
ttft_ms = 500
tpot_ms = 50

[validity]
min_requests = 50
max_error_rate = "2%"
max_schedule_lag_p99_ms = 25
require_complete = false

[settings]
confidence = 0.9
n_resamples = 500
seed = 7
"""


def test_every_form_parses_to_the_right_limit():
    f = parse_budgets(FULL, "b.toml")
    got = [(b.metric, b.kind, b.limit, b.line) for b in f.budgets]
    assert got == [
        ("ttft_p99", BudgetKind.RELATIVE, pytest.approx(0.10), 3),
        ("output_throughput", BudgetKind.RELATIVE, pytest.approx(0.05), 4),
        ("e2e_p50", BudgetKind.RELATIVE, pytest.approx(0.075), 5),
        ("error_rate", BudgetKind.MAX, pytest.approx(0.001), 6),
        ("goodput_frac", BudgetKind.MIN, pytest.approx(0.95), 7),
        ("goodput", BudgetKind.MIN, 2.5, 8),
        ("tpot_p50", BudgetKind.RELATIVE, pytest.approx(0.10), 9),
        ("tpot_p50", BudgetKind.MAX, pytest.approx(40e6), 9),
        ("itl_p99", BudgetKind.MAX, pytest.approx(0.2e9), 10),
        ("kv_usage_max", BudgetKind.MAX, 0.9, 11),
        ("preemptions", BudgetKind.MAX, 0.0, 12),
    ]
    assert f.slo == SLO(ttft_ms=500, tpot_ms=50)
    assert f.validity.min_requests == 50
    assert f.validity.max_error_rate_frac == pytest.approx(0.02)
    assert f.validity.max_schedule_lag_p99_ms == 25.0
    assert f.validity.require_complete is False
    assert (f.settings.confidence, f.settings.n_resamples, f.settings.seed) == (0.9, 500, 7)


def test_defaults_without_optional_sections():
    f = parse_budgets('[budgets]\nttft_p50 = "+5%"\n')
    assert f.slo is None
    assert f.validity.min_requests == 20
    assert f.validity.require_complete is True
    assert f.settings.confidence == 0.95


def _error(text: str) -> str:
    with pytest.raises(BudgetError) as exc:
        parse_budgets(text, "b.toml")
    return str(exc.value)


def test_typo_in_a_metric_names_the_line_a_suggestion_and_every_valid_name():
    msg = _error('[budgets]\n# comment\nttft_p99 = "+5%"\nttft_p999 = "+5%"\n')
    assert msg.startswith("b.toml:4: unknown metric 'ttft_p999'")
    assert "did you mean ttft_p99" in msg
    for name in ("ttft_p50", "output_throughput", "error_rate", "kv_usage_max"):
        assert name in msg


@pytest.mark.parametrize(("text", "where", "what"), [
    ('[budget]\nttft_p99 = "+5%"\n', "b.toml:1", "unknown section [budget]"),
    ('[budgets]\nttft_p99 = "-5%"\n', "b.toml:2", "would demand an improvement"),
    ('[budgets]\noutput_throughput = "+5%"\n', "b.toml:2", "would demand an improvement"),
    ('[budgets]\nerror_rate = "+5%"\n', "b.toml:2", "absolute limit"),
    ('[budgets]\nttft_p99 = "<= 500"\n', "b.toml:2", "give a time unit"),
    ('[budgets]\nerror_rate = "<= 5"\n', "b.toml:2", "a fraction is a percentage"),
    ('[budgets]\nttft_p99 = "< 500 ms"\n', "b.toml:2", "expected a relative budget"),
    ('[budgets]\nttft_p99 = 5\n', "b.toml:2", "give a string"),
    ('[budgets]\noutput_throughput = ">= 5 ms"\n', "b.toml:2", "is in tok/s"),
    ('[budgets]\ngoodput_frac = ">= 90%"\n', "b.toml:2", "needs goodput objectives"),
    ('[budgets]\nttft_p99 = "+5%"\n[slo]\nttft = 5\n', "b.toml:4", "unknown SLO 'ttft'"),
    ('[budgets]\nttft_p99 = "+5%"\n[validity]\nmin_request = 5\n', "b.toml:4",
     "unknown validity check 'min_request'"),
    ('[budgets]\nttft_p99 = "+5%"\n[validity]\nmax_error_rate = "50"\n', "b.toml:4",
     "percentage"),
    ('[budgets]\nttft_p99 = "+5%"\n[settings]\nconfidence = 95\n', "b.toml:4",
     "confidence must be"),
    ('[budgets]\nttft_p99 = "+5%"\n[settings]\nseeds = 1\n', "b.toml:4",
     "unknown setting 'seeds'"),
])
def test_mistakes_name_the_line_and_what_is_valid(text, where, what):
    msg = _error(text)
    assert msg.startswith(where + ":"), msg
    assert what in msg


def test_toml_syntax_error_names_the_line():
    msg = _error('[budgets]\nttft_p99 "+5%"\n')
    assert "not valid TOML" in msg
    assert "line 2" in msg


def test_no_budgets_is_an_error():
    assert "no budgets" in _error("[slo]\nttft_ms = 5\n")
    assert "no budgets" in _error("")


def test_load_budgets_missing_file(tmp_path):
    with pytest.raises(BudgetError, match="cannot read the budgets file"):
        load_budgets(tmp_path / "nope.toml")
    p = tmp_path / "b.toml"
    p.write_text('[budgets]\nttft_p50 = "+5%"\n')
    assert load_budgets(p).path == str(p)
