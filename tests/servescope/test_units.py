"""Display helpers: one way to show a duration or a millisecond value."""

from __future__ import annotations

import math

import pytest

from servescope.units import MISSING, fmt_duration, fmt_ms


@pytest.mark.parametrize(("ns", "text"), [
    (850, "850 ns"), (12_345, "12.3 µs"), (4_561_000, "4.56 ms"), (7_890_000_000, "7.89 s"),
    (200 * 10**9, "3 min 20 s"), (7_500 * 10**9, "2 h 05 min"), (-4_561_000, "-4.56 ms"),
    (None, MISSING), (math.nan, MISSING), (math.inf, MISSING)])
def test_fmt_duration(ns, text):
    assert fmt_duration(ns) == text


@pytest.mark.parametrize(("ns", "digits", "text"), [
    (1_234_567, None, "1.23"), (123_456_789, None, "123"), (456_000, None, "0.46"),
    (1_234_567_890, 1, "1,234.6"), (None, 1, MISSING), (math.nan, None, MISSING)])
def test_fmt_ms(ns, digits, text):
    assert fmt_ms(ns, digits) == text
