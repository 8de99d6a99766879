"""Conversation ids of imported requests: kept for multi-turn runs only.

Tools give every request a conversation id (a UUID per request for single-turn runs). The
run format uses ``conversation_id = -1`` for single requests, so ids are numbered in order
of appearance and dropped again when no request is a later turn.
"""

from __future__ import annotations

from collections.abc import Sequence

from servescope.records import RequestRecord

__all__ = ["ConversationIds"]


class ConversationIds:
    """Numbers a tool's conversation keys in order of appearance."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def of(self, key: str | None) -> int:
        return -1 if not key else self._ids.setdefault(key, len(self._ids))

    @staticmethod
    def finish(records: Sequence[RequestRecord]) -> None:
        """Forget the ids when the run has no multi-turn conversation."""
        if not any(r.turn > 0 for r in records):
            for r in records:
                r.conversation_id = -1
