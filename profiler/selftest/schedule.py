"""The exact schedule the reference server follows for one request.

A :class:`RefSchedule` is the server's default; a request may override any field with a
``"servescope_ref": {...}`` object in its JSON body (see :meth:`RefSchedule.merge`), so one
server serves every test case.

Timing. The first content event is due at ``t_recv + ttft_ms``, content event ``k`` at
``t_recv + ttft_ms + k * itl_ms`` (absolute deadlines). ``itl_ms = 0`` means "as fast as
possible". Chat's role-only chunk is written just before the first content event (like
vLLM, which emits it with the first engine output) unless ``role_delay_ms`` is set, in
which case it is due at ``t_recv + role_delay_ms``. The usage chunk and ``[DONE]`` follow
the last content event immediately. A write of ``events_per_write`` events goes out at the
deadline of the last event in it.

Tokens. The request gets ``min(max_tokens, output_tokens)`` tokens (``output_tokens`` alone
when the request names no limit), ``finish_reason`` "length". If ``eos_after`` is set and
the request does not ask for ``ignore_eos``, generation stops after ``eos_after`` tokens
when that comes first, with ``finish_reason`` "stop". The first content event carries
``first_event_tokens`` tokens (default ``tokens_per_event``), every later one
``tokens_per_event`` (the last one the remainder).

Faults (``fault``; several may be joined with commas, at most one of them terminal):

terminal — what happens instead of the rest of the response:
  ``http_500`` / ``http_429`` / ``http_400``: answer at once with that status and an
      OpenAI-style body ``{"error": {"message", "type", "param": null, "code"}}``.
  ``error_event``: after ``fault_after`` content events, a ``data: {"error": {...}}``
      event, then the chunked body ends cleanly (no usage, no ``[DONE]``).
  ``error_event_done``: the same, followed by ``data: [DONE]`` (what vLLM does).
  ``reset``: after ``fault_after`` content events, the TCP connection is aborted with
      ``SO_LINGER 0`` (an RST; the client sees a connection reset or an incomplete body).
  ``truncate``: after ``fault_after`` content events, the body ends cleanly without usage
      and ``[DONE]``.
  ``stall``: after ``fault_after`` content events nothing more is sent; the server holds
      the connection until the client closes it.
  The fault fires at the deadline of content event ``fault_after``; when the stream has
  no more than ``fault_after`` content events it fires right after the last one.

format variants — a well-formed stream written in an unusual but legal way:
  ``no_usage``: ignore ``stream_options`` (no usage anywhere; non-stream body has none).
  ``crlf``: every line ends with ``\\r\\n``.  ``nospace``: ``data:{json}``.
  ``trailing_space``: TensorRT-LLM's ``data: {json} \\n\\n`` (``[DONE]`` without space).
  ``comments``: ``: keep-alive\\n\\n`` right after the headers and ``: ping\\n\\n``
      before every event, in the same write.
  ``split_writes``: every event written in 2-3 pieces at odd byte offsets, one of them
      inside the first multi-byte UTF-8 character when there is one (token text is then
      non-ASCII), ``split_gap_ms`` apart; needs ``events_per_write = 1``.
  ``coalesce``: at least 4 events per write (``events_per_write`` if larger).
  ``partial_utf8``: token text with "é", "中", "🙂", vLLM's "\\ufffd" and empty deltas.

Non-streamed requests answer with one JSON body when their last token is due. Faults there:
``http_*`` as above; ``error_event``/``error_event_done`` become an HTTP 500 error body at the
fault's deadline; ``reset`` aborts before any response byte; ``truncate`` announces the whole
body's Content-Length, sends half and closes; ``stall`` never answers; ``no_usage`` omits
``usage``; format variants do not apply (``partial_utf8``/``split_writes`` still pick the
non-ASCII token text).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FORMAT_FAULTS", "TERMINAL_FAULTS", "RefSchedule"]

TERMINAL_FAULTS = frozenset(
    {
        "http_500",
        "http_429",
        "http_400",
        "error_event",
        "error_event_done",
        "reset",
        "truncate",
        "stall",
    }
)
FORMAT_FAULTS = frozenset(
    {
        "no_usage",
        "crlf",
        "nospace",
        "trailing_space",
        "comments",
        "split_writes",
        "coalesce",
        "partial_utf8",
    }
)
COALESCE_MIN_EVENTS = 4

FIELD_HELP: dict[str, str] = {
    "ttft_ms": "time from request arrival to the first content event (ms)",
    "itl_ms": "time between content events (ms); 0 = as fast as possible",
    "tokens_per_event": "tokens carried by each content event",
    "output_tokens": "tokens to generate, capped by the request's max_tokens",
    "first_event_tokens": "tokens in the first content event (default tokens_per_event)",
    "events_per_write": "SSE events per socket write",
    "fault": "fault or format variant(s), comma-separated",
    "fault_after": "content events sent before a terminal fault fires",
    "eos_after": "stop early with finish_reason 'stop' after this many tokens "
    "unless the request sets ignore_eos",
    "prompt_tokens": "usage.prompt_tokens to report (default: words in the prompt)",
    "role_delay_ms": "send chat's role chunk this long after arrival "
    "(default: with the first content event)",
    "split_gap_ms": "pause between the pieces of a split write (ms)",
}


def _check_int(name: str, value: object, minimum: int, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "an integer or null" if optional else "an integer"
        raise ValueError(f"RefSchedule.{name} must be {kind}, got {value!r}")
    if value < minimum:
        raise ValueError(f"RefSchedule.{name} must be >= {minimum}, got {value}")


def _check_float(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "a number or null" if optional else "a number"
        raise ValueError(f"RefSchedule.{name} must be {kind}, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"RefSchedule.{name} must be finite and >= 0, got {value}")


def parse_faults(fault: str | None) -> frozenset[str]:
    """The set of fault names in ``fault`` ("a,b"), validated; empty for None or ""."""
    if fault is None:
        return frozenset()
    if not isinstance(fault, str):
        raise ValueError(f"RefSchedule.fault must be a string or null, got {fault!r}")
    names = frozenset(part.strip() for part in fault.split(",") if part.strip())
    unknown = sorted(names - TERMINAL_FAULTS - FORMAT_FAULTS)
    if unknown:
        valid = ", ".join(sorted(TERMINAL_FAULTS | FORMAT_FAULTS))
        raise ValueError(f"unknown fault {', '.join(unknown)}; valid faults: {valid}")
    terminal = sorted(names & TERMINAL_FAULTS)
    if len(terminal) > 1:
        raise ValueError(f"at most one terminal fault per request, got {', '.join(terminal)}")
    return names


@dataclass(frozen=True, slots=True)
class RefSchedule:
    """What the reference server does for a request; see the module docstring."""

    ttft_ms: float = 20.0
    itl_ms: float = 5.0
    tokens_per_event: int = 1
    output_tokens: int = 64
    first_event_tokens: int | None = None
    events_per_write: int = 1
    fault: str | None = None
    fault_after: int = 0
    eos_after: int | None = None
    prompt_tokens: int | None = None
    role_delay_ms: float | None = None
    split_gap_ms: float = 0.5

    def __post_init__(self) -> None:
        _check_float("ttft_ms", self.ttft_ms)
        _check_float("itl_ms", self.itl_ms)
        _check_float("role_delay_ms", self.role_delay_ms, optional=True)
        _check_float("split_gap_ms", self.split_gap_ms)
        _check_int("tokens_per_event", self.tokens_per_event, 1)
        _check_int("output_tokens", self.output_tokens, 1)
        _check_int("first_event_tokens", self.first_event_tokens, 1, optional=True)
        _check_int("events_per_write", self.events_per_write, 1)
        _check_int("fault_after", self.fault_after, 0)
        _check_int("eos_after", self.eos_after, 1, optional=True)
        _check_int("prompt_tokens", self.prompt_tokens, 0, optional=True)
        if self.role_delay_ms is not None and self.role_delay_ms > self.ttft_ms:
            raise ValueError(
                f"RefSchedule.role_delay_ms ({self.role_delay_ms}) must not exceed "
                f"ttft_ms ({self.ttft_ms}): the role chunk precedes the first token"
            )
        faults = parse_faults(self.fault)
        if "split_writes" in faults and (self.events_per_write > 1 or "coalesce" in faults):
            raise ValueError("fault split_writes needs events_per_write = 1 and no coalesce")

    @property
    def faults(self) -> frozenset[str]:
        """Every fault and format variant named by ``fault``."""
        return parse_faults(self.fault)

    @property
    def terminal_fault(self) -> str | None:
        """The one terminal fault named by ``fault``, if any."""
        terminal = self.faults & TERMINAL_FAULTS
        return next(iter(terminal)) if terminal else None

    @property
    def effective_events_per_write(self) -> int:
        """Events per write after ``coalesce`` is applied."""
        if "coalesce" in self.faults:
            return max(self.events_per_write, COALESCE_MIN_EVENTS)
        return self.events_per_write

    def merge(self, overrides: Mapping[str, Any]) -> RefSchedule:
        """A copy with ``overrides`` applied; unknown names or bad values raise ValueError."""
        if not isinstance(overrides, Mapping):
            raise ValueError(f"servescope_ref must be a JSON object, got {overrides!r}")
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(
                f"unknown RefSchedule field(s) {', '.join(map(str, unknown))}; "
                f"valid fields: {', '.join(sorted(names))}"
            )
        return dataclasses.replace(self, **overrides)

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def output_plan(self, max_tokens: int | None, *, ignore_eos: bool = False) -> tuple[int, str]:
        """Tokens to generate for a request and the finish_reason that ends them."""
        limit = self.output_tokens if max_tokens is None else min(max_tokens, self.output_tokens)
        if self.eos_after is not None and not ignore_eos and self.eos_after <= limit:
            return self.eos_after, "stop"
        return limit, "length"

    def event_tokens(self, total: int) -> list[int]:
        """Tokens carried by each content event for ``total`` tokens."""
        first = (
            self.tokens_per_event if self.first_event_tokens is None else self.first_event_tokens
        )
        sizes = [min(first, total)]
        left = total - sizes[0]
        step = self.tokens_per_event
        full, rest = divmod(left, step)
        sizes.extend([step] * full)
        if rest:
            sizes.append(rest)
        return sizes
