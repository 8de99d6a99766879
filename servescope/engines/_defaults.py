"""What most adapters answer the same way; an adapter overrides only what differs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol

from servescope.engines._argv import Launch
from servescope.engines.base import Knob, Signal

__all__ = ["AdapterDefaults"]

_EMPTY: Mapping[Any, Any] = MappingProxyType({})


class _Launches(Protocol):
    def launch(self, argv: Sequence[str]) -> Launch | None: ...


class AdapterDefaults:
    """Mixin for the adapter dataclasses (no state: ``__slots__ = ()``)."""

    __slots__ = ()

    def matches(self: _Launches, argv: Sequence[str]) -> bool:
        return self.launch(argv) is not None

    @property
    def derived_signals(self) -> Mapping[Signal, Any]:
        return _EMPTY

    @property
    def histogram_scale(self) -> Mapping[str, float]:
        return _EMPTY

    @property
    def histogram_labels(self) -> Mapping[str, Mapping[str, str]]:
        return _EMPTY

    @property
    def notes(self) -> Mapping[str, str]:
        return _EMPTY

    @property
    def tuning(self) -> Mapping[Knob, str]:
        return _EMPTY

    @property
    def api_key_flags(self) -> tuple[str, ...]:
        """Flags of the serving command that make the server require ``Authorization:
        Bearer KEY`` (the name most OpenAI-compatible servers use)."""
        return ("--api-key",)

    @property
    def api_key_env(self) -> tuple[str, ...]:
        """Environment variables the server reads its required key from."""
        return ()
