"""Shared fixtures: one real reference server (a subprocess on loopback) per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from profiler.selftest.process import RefServerHandle, start_refserver
from profiler.selftest.schedule import RefSchedule


@pytest.fixture(scope="session")
def refserver() -> Iterator[RefServerHandle]:
    """Fast default schedule (TTFT 5 ms, 1 ms between events, 8 tokens); tests override
    per request with ``servescope_ref`` in the body."""
    sched = RefSchedule(ttft_ms=5, itl_ms=1, output_tokens=8)
    with start_refserver(sched, extra_args=["--spin-us", "0", "--model", "ref"]) as server:
        yield server
