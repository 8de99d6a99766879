"""Ground truth: what the reference server actually did for each request.

Every timestamp is ``time.monotonic_ns()`` (CLOCK_MONOTONIC, shared by all processes of the
host), taken by the server itself, so a client on the same host can compare its own
timestamps directly. The truth is what was done, never the plan: ``t_event_ns`` is read
immediately before the write of each event (events sharing one write share its time), and
the planned deadline of the same event is kept beside it in ``t_sched_ns``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["DEFAULT_TRUTH_CAPACITY", "TruthRecord", "TruthStore"]

DEFAULT_TRUTH_CAPACITY = 200_000
UNKNOWN = -1


@dataclass(slots=True)
class TruthRecord:
    """One request as the server handled it. Per-event columns are parallel lists.

    ``kinds`` entries are "role", "output", "usage", "done" or "error"; ``tokens`` and
    ``chars`` are the completion tokens and characters (code points) of each event's text;
    ``pieces`` holds the byte sizes of the pieces of each write under ``split_writes``.
    ``ended`` is "complete", "fault", "client_gone" or "" while in flight.
    """

    request_id: str
    endpoint: str
    stream: bool
    t_recv_ns: int
    schedule: dict[str, Any]
    fault: str | None = None
    status: int = UNKNOWN
    max_tokens: int = UNKNOWN
    prompt_tokens: int = UNKNOWN
    output_tokens: int = UNKNOWN  # tokens planned for this request
    finish_reason: str = ""
    include_usage: bool = False
    continuous_usage: bool = False
    t_headers_ns: int = UNKNOWN
    t_done_ns: int = UNKNOWN  # after the last byte was handed to the socket, or the fault
    ended: str = ""
    t_event_ns: list[int] = field(default_factory=list)
    t_sched_ns: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    chars: list[int] = field(default_factory=list)
    pieces: list[list[int]] = field(default_factory=list)

    def add_event(
        self, kind: str, t_ns: int, t_sched_ns: int, *, tokens: int = 0, chars: int = 0
    ) -> None:
        """Append one event's columns."""
        self.t_event_ns.append(t_ns)
        self.t_sched_ns.append(t_sched_ns)
        self.kinds.append(kind)
        self.tokens.append(tokens)
        self.chars.append(chars)


class TruthStore:
    """The newest ``capacity`` records, in arrival order (oldest dropped first)."""

    def __init__(self, capacity: int = DEFAULT_TRUTH_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"truth capacity must be >= 1, got {capacity}")
        self._records: deque[TruthRecord] = deque(maxlen=capacity)
        self.dropped = 0

    def add(self, record: TruthRecord) -> None:
        """Keep ``record`` (it may still be filled in while its request runs)."""
        if len(self._records) == self._records.maxlen:
            self.dropped += 1
        self._records.append(record)

    def clear(self) -> None:
        """Forget every record."""
        self._records.clear()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._records)

    def records(self, request_id: str | None = None) -> list[TruthRecord]:
        """All records, or those of one request id."""
        if request_id is None:
            return list(self._records)
        return [r for r in self._records if r.request_id == request_id]

    def to_json(self, request_id: str | None = None) -> bytes:
        """The records as a JSON list."""
        return orjson.dumps(self.records(request_id))
