"""The shared pieces: exact time conversion, character spreading, error texts → outcomes."""

from __future__ import annotations

from fractions import Fraction

import pytest

from profiler.importers.outcomes import classify_error, error_text, status_from_reason
from profiler.importers.timeconv import ms_to_ns, s_to_ns, spread_chars, timestamp_s_to_ns
from servescope.records import Outcome


def test_epoch_seconds_convert_exactly_where_float_multiplication_does_not():
    t = 1795360233.4200401  # a GuideLLM request_end_time from the faults capture
    exact = round(Fraction(t) * 10**9)
    assert timestamp_s_to_ns(t) == exact
    assert round(t * 1e9) != exact  # the naive product is off by tens of ns here
    assert s_to_ns(0.005) == 5_000_000
    assert ms_to_ns(32.013723999999996) == 32_013_724


@pytest.mark.parametrize(("total", "n", "want"), [
    (54, 8, [7, 7, 7, 7, 7, 7, 6, 6]), (3, 5, [1, 1, 1, 1, 1]), (-1, 2, [1, 1]), (9, 0, []),
])
def test_chars_are_spread_evenly_with_at_least_one_each(total, n, want):
    assert spread_chars(total, n) == want


@pytest.mark.parametrize(("text", "status", "want"), [
    ("ClientPayloadError: Response payload is not completed: <TransferEncodingError: 400, "
     "message='Not enough data to satisfy transfer length header.'>. "
     "ConnectionResetError(104, 'Connection reset by peer')", None, Outcome.CONNECTION_ERROR),
    ("ReadError('')", None, Outcome.CONNECTION_ERROR),
    ("HTTPStatusError(\"Server error '500 Internal Server Error' for url ...\")", 500,
     Outcome.HTTP_ERROR),
    ("Too Many Requests", 429, Outcome.RATE_LIMITED),
    ("ServerTimeoutError('Timeout on reading data from socket')", None, Outcome.TIMEOUT),
    ("RequestCancellationError: Request cancelled by external signal", 499, Outcome.CANCELLED),
    ("SSEResponseError: Error occurred in SSE response: boom", 502, Outcome.HTTP_ERROR),
    ("SSEResponseError: Error occurred in SSE response: boom", None, Outcome.STREAM_ERROR),
])
def test_error_texts_map_to_outcomes(text, status, want):
    assert classify_error(text, status) == (want, True)


def test_an_unknown_error_is_invalid_response_and_says_it_was_not_recognized():
    assert classify_error("Never received a valid chunk to calculate TTFT.", None) == (
        Outcome.INVALID_RESPONSE, False)


def test_reason_phrases_give_statuses_and_tracebacks_keep_their_last_line():
    assert status_from_reason("Internal Server Error") == 500
    assert status_from_reason("Too Many Requests") == 429
    assert status_from_reason("Traceback (most recent call last): …") is None
    tb = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n    g()\n"
          "aiohttp.ClientPayloadError: cut, auth: Bearer abcdefghijklmnop\n")
    assert error_text(tb) == "aiohttp.ClientPayloadError: cut, auth: Bearer ***REDACTED***"
    assert len(error_text("x" * 2000)) == 500
