"""Typed records of what the client saw: one per request, with its SSE events inline.

Units live in names: ``*_ns`` are monotonic nanoseconds (see :mod:`servescope.clock`).
``-1`` stands for "not known / not applicable" in integer fields so the columnar tables
stay integer-typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

__all__ = ["CLIENT_TOKENIZER", "UNKNOWN", "EventKind", "Outcome", "RequestRecord"]

UNKNOWN = -1
CLIENT_TOKENIZER = "client_tokenizer"  # RequestRecord.tokens_cum_source


class EventKind(IntEnum):
    """What one SSE event carried."""

    OUTPUT = 0  # generated text, reasoning text or a tool-call delta (may be empty text)
    ROLE = 1  # chat's opening role-only chunk
    USAGE = 2  # usage-only chunk (choices: [])
    ERROR = 3  # an error object sent inside the stream
    DONE = 4  # the [DONE] sentinel
    OTHER = 5  # anything else (unparseable JSON, keep-alive data, finish-only chunk)
    FINISH = 6  # a chunk whose only news is finish_reason (empty delta)


class Outcome(StrEnum):
    """How a request ended. Only SUCCESS counts toward latency metrics."""

    SUCCESS = "success"  # HTTP 200, stream ended with [DONE] (or complete JSON body)
    HTTP_ERROR = "http_error"  # non-200 answer other than 429 (status and body kept)
    RATE_LIMITED = "rate_limited"  # HTTP 429
    STREAM_ERROR = "stream_error"  # an error event arrived inside a 200 stream
    TRUNCATED = "truncated"  # the stream closed cleanly but without [DONE]
    CONNECTION_ERROR = "connection_error"  # refused, reset, or broken mid-stream
    TIMEOUT = "timeout"  # the per-request timeout fired (stall or too slow)
    INVALID_RESPONSE = "invalid_response"  # 200 but not SSE / not JSON where JSON is due
    CANCELLED = "cancelled"  # the run stopped (Ctrl-C, duration limit) while in flight


@dataclass(slots=True)
class RequestRecord:
    """One request as the client saw it; appended to the run directory when it ends.

    Event columns are parallel lists (one entry per SSE event, in arrival order):
    ``ev_t_ns`` arrival time of the read that delivered the event, ``ev_kind`` an
    :class:`EventKind`, ``ev_chars`` characters of generated text, ``ev_tokens_cum`` the
    server's cumulative ``usage.completion_tokens`` carried by that event (``-1`` if none).
    """

    request_id: int
    worker_id: int = 0
    phase: str = "measure"  # "warmup" or "measure"
    step: int = 0  # sweep step (0 when not sweeping)
    conversation_id: int = UNKNOWN
    turn: int = 0
    group_id: int = UNKNOWN  # shared-prefix group
    x_request_id: str = ""
    endpoint: str = ""  # "completions" or "chat"
    prompt_tokens_planned: int = UNKNOWN
    max_tokens: int = UNKNOWN
    t_intended_ns: int = UNKNOWN  # open-loop schedule; -1 for closed loop
    t_start_ns: int = UNKNOWN  # the client began this request (before any HTTP work)
    t_send_ns: int = UNKNOWN  # the request body was written to the socket
    t_headers_ns: int = UNKNOWN
    t_done_ns: int = UNKNOWN  # arrival of [DONE]
    t_end_ns: int = UNKNOWN  # request finished (stream closed, error or timeout)
    status: int = UNKNOWN  # HTTP status code
    outcome: str = Outcome.SUCCESS.value
    error: str = ""
    finish_reason: str = ""
    usage_prompt_tokens: int = UNKNOWN
    usage_completion_tokens: int = UNKNOWN
    usage_cached_tokens: int = UNKNOWN
    output_chars: int = 0
    output_text: str | None = None  # only kept when asked (multi-turn, --keep-text)
    ev_clock: str = ""  # clock of ev_t_ns: packet_rx | kernel_rx | socket_read | coroutine_wakeup
    tokens_cum_source: str = ""  # "client_tokenizer" when ev_tokens_cum is the client's count
    client_completion_tokens: int = UNKNOWN  # output tokens counted by the client's tokenizer
    ev_t_ns: list[int] = field(default_factory=list)
    ev_kind: list[int] = field(default_factory=list)
    ev_chars: list[int] = field(default_factory=list)
    ev_tokens_cum: list[int] = field(default_factory=list)
    ev_lag_ns: list[int] = field(default_factory=list)
