"""The engines, by name: an explicit, ordered :class:`~servescope.registry.Registry` of
:class:`~servescope.engines.spec.EngineSpec` (importing registers nothing).

Adding an engine is one new module defining ``SPEC`` and one line in :data:`ENGINES`.
"""

from __future__ import annotations

from collections.abc import Sequence

from servescope.engines import openai_generic, sglang, transformers_serve, triton, trtllm, vllm
from servescope.engines.spec import EngineSpec
from servescope.registry import Registry, UnknownNameError

__all__ = ["ENGINES", "UnknownEngineError", "detect_from_metrics", "detect_spec",
           "engine_names", "get_spec"]

ENGINES: Registry[EngineSpec] = Registry("engine", ((s.name, s) for s in (
    vllm.SPEC,
    sglang.SPEC,
    trtllm.SPEC,
    triton.SPEC,
    transformers_serve.SPEC,
    openai_generic.SPEC,
)))


class UnknownEngineError(UnknownNameError):
    """No engine of that name (a LookupError and a ValueError); the message lists the valid
    names and the closest one."""


def engine_names() -> tuple[str, ...]:
    return ENGINES.names()


def get_spec(name: str) -> EngineSpec:
    """The spec called ``name`` (case-insensitive); :class:`UnknownEngineError` on a miss."""
    try:
        return ENGINES.get(name)
    except UnknownNameError as exc:
        raise UnknownEngineError(exc.kind, exc.name, exc.valid) from None


def detect_spec(argv: Sequence[str]) -> EngineSpec | None:
    """The engine whose launcher comes first in ``argv`` (wrappers such as ``env X=Y``,
    ``uv run`` or ``nsys profile`` before it are skipped); None if no engine is recognized.
    Ties go to the earlier engine in :data:`ENGINES`."""
    best: tuple[int, int, EngineSpec] | None = None
    for order, spec in enumerate(ENGINES):
        launch = spec.launch(argv)
        if launch is not None and (best is None or (launch.index, order) < best[:2]):
            best = (launch.index, order, spec)
    return best[2] if best else None


def detect_from_metrics(page: str) -> EngineSpec | None:
    """The engine whose own metric families (signals and histograms) appear most often in a
    ``/metrics`` page (attach to a server whose command servescope never saw); None if none
    appears. Ties go to the earlier engine."""
    best: tuple[int, EngineSpec] | None = None
    for spec in ENGINES:
        families = {f for s in spec.signals.values() for f in s.families}
        families |= {f for names in spec.histograms.values() for f in names}
        hits = sum(1 for f in families if f in page)
        if hits and (best is None or hits > best[0]):
            best = (hits, spec)
    return best[1] if best else None
