from __future__ import annotations

import re

import pytest

from profiler.selftest.schedule import FORMAT_FAULTS, TERMINAL_FAULTS, RefSchedule


def test_defaults_are_valid_and_frozen():
    s = RefSchedule()
    assert (s.ttft_ms, s.itl_ms, s.output_tokens, s.tokens_per_event) == (20, 5, 64, 1)
    with pytest.raises(AttributeError):
        s.ttft_ms = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ttft_ms": -1}, "ttft_ms must be finite and >= 0"),
        ({"itl_ms": float("nan")}, "itl_ms must be finite"),
        ({"itl_ms": "5"}, "itl_ms must be a number"),
        ({"tokens_per_event": 0}, "tokens_per_event must be >= 1"),
        ({"output_tokens": 2.5}, "output_tokens must be an integer"),
        ({"events_per_write": True}, "events_per_write must be an integer"),
        ({"fault": "explode"}, "unknown fault explode; valid faults:"),
        ({"fault": "reset,truncate"}, "at most one terminal fault"),
        ({"fault": "split_writes", "events_per_write": 2}, "split_writes needs"),
        ({"role_delay_ms": 30}, "must not exceed ttft_ms"),
        ({"bogus": 1}, "unknown RefSchedule field(s) bogus; valid fields:"),
    ],
)
def test_merge_rejects_bad_values_with_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        RefSchedule().merge(overrides)


def test_merge_returns_a_new_schedule():
    base = RefSchedule()
    merged = base.merge({"ttft_ms": 1, "fault": "crlf, comments", "fault_after": 3})
    assert merged.ttft_ms == 1
    assert base.ttft_ms == 20
    assert merged.faults == {"crlf", "comments"}
    assert merged.terminal_fault is None
    assert RefSchedule(fault="stall,crlf").terminal_fault == "stall"


def test_fault_names_are_disjoint():
    assert not TERMINAL_FAULTS & FORMAT_FAULTS


@pytest.mark.parametrize(
    ("schedule", "max_tokens", "ignore_eos", "expected"),
    [
        (RefSchedule(output_tokens=64), 10, False, (10, "length")),
        (RefSchedule(output_tokens=64), None, False, (64, "length")),
        (RefSchedule(output_tokens=5), 10, False, (5, "length")),
        (RefSchedule(eos_after=3), 10, False, (3, "stop")),
        (RefSchedule(eos_after=3), 10, True, (10, "length")),
        (RefSchedule(eos_after=30), 10, False, (10, "length")),
    ],
)
def test_output_plan(schedule, max_tokens, ignore_eos, expected):
    assert schedule.output_plan(max_tokens, ignore_eos=ignore_eos) == expected


def test_event_tokens():
    assert RefSchedule(tokens_per_event=3).event_tokens(10) == [3, 3, 3, 1]
    assert RefSchedule(tokens_per_event=2, first_event_tokens=5).event_tokens(10) == [5, 2, 2, 1]
    assert RefSchedule(first_event_tokens=8).event_tokens(4) == [4]
    assert RefSchedule().event_tokens(3) == [1, 1, 1]


def test_coalesce_raises_events_per_write():
    assert RefSchedule(fault="coalesce").effective_events_per_write == 4
    assert RefSchedule(fault="coalesce", events_per_write=9).effective_events_per_write == 9
    assert RefSchedule(events_per_write=2).effective_events_per_write == 2
