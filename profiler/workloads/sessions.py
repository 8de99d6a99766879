"""What the driver sends: sessions of one or more turns.

A single-turn request is a :class:`Session` with one :class:`Turn`. In a multi-turn session the
driver sends turn k+1 after turn k's answer arrives plus ``think_time_ns``, with the real
assistant answers in the history; ``Turn.prompt`` is then the new user message only and
``Turn.prompt_tokens`` counts that message alone (no history, no chat template).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from profiler.workloads.errors import WorkloadError

__all__ = ["Session", "TokenCountSource", "Turn", "with_arrivals"]

TokenCountSource = Literal["tokenizer", "words"]
"""``"tokenizer"``: counted with the model's tokenizer (exact for the bare prompt text).
``"words"``: whitespace words, used when no tokenizer was given; only approximate."""


@dataclass(frozen=True, slots=True)
class Turn:
    """One request: the prompt text (for chat, the user message), its token count, and the
    ``max_tokens`` to ask for."""

    prompt: str
    prompt_tokens: int
    max_tokens: int

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str):
            raise WorkloadError(f"Turn.prompt must be a str, got {type(self.prompt).__name__}")
        if self.prompt_tokens < 0:
            raise WorkloadError(f"Turn.prompt_tokens must be >= 0, got {self.prompt_tokens}")
        if self.max_tokens < 1:
            raise WorkloadError(f"Turn.max_tokens must be >= 1, got {self.max_tokens}")


@dataclass(frozen=True, slots=True)
class Session:
    """A conversation of one or more turns.

    ``group_id``: the shared-prefix group (``-1``: none). ``arrival_offset_ns``: intended start
    relative to the run start when the dataset carries its own schedule (traces), else
    ``None``. ``think_time_ns``: pause between an answer and the next turn.
    ``prompt_tokens_source`` says how the turns' ``prompt_tokens`` were counted; it defaults
    to the approximate ``"words"`` so a hand-built session never claims exact counts.
    """

    session_id: int
    turns: tuple[Turn, ...]
    group_id: int = -1
    arrival_offset_ns: int | None = None
    think_time_ns: int = 0
    prompt_tokens_source: TokenCountSource = "words"

    def __post_init__(self) -> None:
        if not isinstance(self.turns, tuple) or not self.turns:
            raise WorkloadError(f"session {self.session_id}: turns must be a non-empty tuple")
        if self.arrival_offset_ns is not None and self.arrival_offset_ns < 0:
            raise WorkloadError(
                f"session {self.session_id}: arrival_offset_ns must be >= 0, "
                f"got {self.arrival_offset_ns}"
            )
        if self.think_time_ns < 0:
            raise WorkloadError(f"session {self.session_id}: think_time_ns must be >= 0")
        if self.prompt_tokens_source not in ("tokenizer", "words"):
            raise WorkloadError(
                f"prompt_tokens_source must be 'tokenizer' or 'words', "
                f"got {self.prompt_tokens_source!r}"
            )

    @property
    def prompt_tokens(self) -> int:
        """Sum of the turns' own prompt tokens (history and template not included)."""
        return sum(t.prompt_tokens for t in self.turns)


def with_arrivals(sessions: Sequence[Session], offsets_ns: Sequence[int]) -> list[Session]:
    """Copies of ``sessions`` carrying ``offsets_ns`` (e.g. from
    :func:`~profiler.workloads.arrivals.arrival_offsets_ns`) as ``arrival_offset_ns``."""
    if len(sessions) != len(offsets_ns):
        raise WorkloadError(f"{len(sessions)} sessions but {len(offsets_ns)} arrival offsets")
    return [
        dataclasses.replace(s, arrival_offset_ns=int(o))
        for s, o in zip(sessions, offsets_ns, strict=True)
    ]
