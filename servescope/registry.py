"""One small registry for everything servescope looks up by name (engines, collectors,
importers, metrics, definitions): an explicit, ordered table (importing registers nothing),
one lookup with a did-you-mean, and one error for a miss that is both a ``LookupError`` and
a ``ValueError``, so callers that catch either get it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from typing import Generic, TypeVar

__all__ = ["Registry", "UnknownNameError", "did_you_mean"]

T = TypeVar("T")


class UnknownNameError(LookupError, ValueError):
    """No entry of that name; the message names the valid ones (and the closest)."""

    def __init__(self, kind: str, name: str, valid: Sequence[str]) -> None:
        super().__init__(f"unknown {kind} {name!r}{did_you_mean(name, valid)}; valid "
                         f"{kind}s: {', '.join(valid)}")
        self.kind = kind
        self.name = name
        self.valid = tuple(valid)


def did_you_mean(name: str, valid: Iterable[str], cutoff: float = 0.5) -> str:
    """`` (did you mean 'x'?)`` for the closest valid name, or ``""``."""
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Registry(Generic[T]):
    """Entries by name, in the order given. Names are matched case-insensitively."""

    def __init__(self, kind: str, entries: Iterable[tuple[str, T]]) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        for name, value in entries:
            key = name.strip().lower()
            if key in self._entries:
                raise ValueError(f"two {kind}s named {key!r}")
            self._entries[key] = value

    def get(self, name: str) -> T:
        """The entry called ``name``; :class:`UnknownNameError` on a miss."""
        try:
            return self._entries[name.strip().lower()]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def values(self) -> tuple[T, ...]:
        return tuple(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.strip().lower() in self._entries

    def __iter__(self) -> Iterator[T]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
