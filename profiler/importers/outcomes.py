"""A peer tool's error text (and HTTP status, where known) → our :class:`Outcome`.

The tools keep an exception's text, not its kind, so the outcome is read from the names
that text carries; a text nothing here recognizes becomes ``invalid_response`` and is
counted, so the importer can warn.
"""

from __future__ import annotations

import http
import re

from servescope.records import Outcome
from servescope.redact import redact_text

__all__ = ["ERROR_CHARS", "classify_error", "error_text", "status_from_reason"]

ERROR_CHARS = 500  # as the run format's ``error`` column
_TIMEOUT = re.compile(r"timeout|timed out", re.I)
_CANCELLED = re.compile(r"cancel", re.I)
_CONNECTION = re.compile(
    r"connection|payload|disconnect|readerror|reset by peer|broken ?pipe|remoteprotocol"
    r"|connecterror|clientos|incompleteread|transferencoding|refused", re.I)
_STREAM = re.compile(r"sseresponseerror|error event|error occurred in sse", re.I)
_PHRASES = {s.phrase.lower(): int(s) for s in http.HTTPStatus}


def status_from_reason(reason: str) -> int | None:
    """``"Internal Server Error"`` → 500 (vLLM keeps only the reason phrase)."""
    return _PHRASES.get(reason.strip().lower())


def classify_error(text: str, status: int | None) -> tuple[Outcome, bool]:
    """(outcome, recognized) of a failed request."""
    if status == 429:
        return Outcome.RATE_LIMITED, True
    if status is not None and status >= 400 and status != 499:
        return Outcome.HTTP_ERROR, True
    for pattern, outcome in ((_CANCELLED, Outcome.CANCELLED), (_TIMEOUT, Outcome.TIMEOUT),
                             (_STREAM, Outcome.STREAM_ERROR),
                             (_CONNECTION, Outcome.CONNECTION_ERROR)):
        if pattern.search(text):
            return outcome, True
    if status == 499:
        return Outcome.CANCELLED, True
    return Outcome.INVALID_RESPONSE, False


def error_text(raw: str) -> str:
    """The error as the run format keeps it: a traceback shortened to its last line,
    secrets masked, at most :data:`ERROR_CHARS` characters."""
    text = raw.strip()
    if "Traceback (most recent call last)" in text:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        text = lines[-1] if lines else text
    text = redact_text(text)
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"
