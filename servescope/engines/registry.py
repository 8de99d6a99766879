"""The engine adapters, by name. An explicit list: importing registers nothing.

Adding an engine is one new module and one line in :data:`ADAPTERS`.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from servescope.engines.base import EngineAdapter
from servescope.engines.extensions import launch_of
from servescope.engines.openai_generic import OpenAIGenericAdapter
from servescope.engines.sglang import SglangAdapter
from servescope.engines.triton import TritonAdapter
from servescope.engines.trtllm import TrtllmAdapter
from servescope.engines.vllm import VllmAdapter

__all__ = ["ADAPTERS", "UnknownEngineError", "adapter_names", "detect_adapter",
           "detect_from_metrics", "get_adapter"]

ADAPTERS: tuple[EngineAdapter, ...] = (
    VllmAdapter(),
    SglangAdapter(),
    TrtllmAdapter(),
    TritonAdapter(),
    OpenAIGenericAdapter(),
)


class UnknownEngineError(LookupError):
    """No adapter of that name; the message lists the valid names."""


def adapter_names() -> tuple[str, ...]:
    return tuple(a.name for a in ADAPTERS)


def get_adapter(name: str) -> EngineAdapter:
    key = name.strip().lower()
    for adapter in ADAPTERS:
        if adapter.name == key:
            return adapter
    names = adapter_names()
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownEngineError(
        f"unknown engine {name!r}{hint}; valid engines: {', '.join(names)}")


def detect_adapter(argv: Sequence[str]) -> EngineAdapter | None:
    """The adapter whose launcher comes first in ``argv`` (wrappers such as ``env X=Y``,
    ``uv run`` or ``nsys profile`` before it are skipped); None if no engine is recognized.
    Ties go to the earlier adapter in :data:`ADAPTERS`."""
    best: tuple[int, int, EngineAdapter] | None = None
    for order, adapter in enumerate(ADAPTERS):
        launch = launch_of(adapter, argv)
        if launch is not None and (best is None or (launch.index, order) < best[:2]):
            best = (launch.index, order, adapter)
    return best[2] if best else None


def detect_from_metrics(page: str) -> EngineAdapter | None:
    """The adapter whose own metric families appear most often in a ``/metrics`` page
    (attach to a server whose command servescope never saw); None if none appears."""
    best: tuple[int, EngineAdapter] | None = None
    for adapter in ADAPTERS:
        families = {f for spec in adapter.signals.values() for f in spec.families}
        families |= {f for names in adapter.histograms.values() for f in names}
        hits = sum(1 for f in families if f in page)
        if hits and (best is None or hits > best[0]):
            best = (hits, adapter)
    return best[1] if best else None
