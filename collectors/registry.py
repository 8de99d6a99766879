"""The collectors by name, as ``--collect`` chooses them.

An explicit table (importing registers nothing, and imports no collector: each entry loads
its class on first use, so ``servescope --help`` stays instant and a machine without a
collector's optional dependency can still list it). Functions take the registry as an
argument, so a test passes its own instead of changing this one.

``requests`` is the client's own request timing: always on, it runs inside the load client
(each worker's :class:`collectors.timeline.TimelineRecorder`, on the hot path of every
request), not in a process of its own, so it is listed here but has no :class:`Collector`;
naming it in ``--collect`` is allowed and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from collectors.base import Collector
from servescope.registry import Registry, UnknownNameError

__all__ = ["COLLECTORS", "DEFAULT_COLLECT", "CollectorEntry", "UnknownNameError", "describe",
           "make_collectors", "parse_collect"]

DEFAULT_COLLECT = "metrics"


@dataclass(frozen=True, slots=True)
class CollectorEntry:
    """One collector's name, a line for ``--help``, and how to make one (``None``: always
    on, part of the load client)."""

    name: str
    summary: str
    load: Callable[[], Collector] | None = None

    @property
    def always_on(self) -> bool:
        return self.load is None


def _metrics() -> Collector:
    from collectors.engine_scrape_process import MetricsCollector

    return MetricsCollector()


def _load(module: str, cls: str) -> Callable[[], Collector]:
    """A loader of ``module.cls()``, imported only when the collector is chosen."""
    def make() -> Collector:
        import importlib

        made: Collector = getattr(importlib.import_module(module), cls)()
        return made
    return make


def _entries(*entries: CollectorEntry) -> Registry[CollectorEntry]:
    return Registry("collector", [(e.name, e) for e in entries])


COLLECTORS: Registry[CollectorEntry] = _entries(
    CollectorEntry("requests", "every request's timing, from the client; always on"),
    CollectorEntry("metrics", "the engine's metrics pages, every --metrics-interval", _metrics),
    CollectorEntry("gpu", "NVML and Hopper GPM telemetry of the engine's GPUs, every "
                   "--gpu-interval (the gpu extra)", _load("collectors.gpu.collector",
                                                            "GpuCollector")),
    CollectorEntry("stacks", "CPU stacks of every engine process with py-spy, and dumps when "
                   "tokens stop (the profiling extra)", _load("collectors.stacks.collector",
                                                               "StackCollector")),
    CollectorEntry("kernels", "one bounded torch-profiler window of the engine in steady "
                   "state (--kernel-steps; --kernels-hook for any PyTorch server), ingested "
                   "into kernels/", _load("collectors.kernels.collector", "KernelCollector")),
    CollectorEntry("otel", "the engine's OpenTelemetry request spans, received on 127.0.0.1 "
                   "(its OTLP endpoint flag is added at launch), into otel/ (the otel extra)",
                   _load("collectors.otel.collector", "OtelCollector")),
)


def parse_collect(text: str | Iterable[str],
                  registry: Registry[CollectorEntry] = COLLECTORS) -> tuple[str, ...]:
    """``"metrics,requests"`` (or its parts) → the registry's names, in order, once each;
    :class:`UnknownNameError` (a ``ValueError`` naming the valid ones) on a miss."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    names: list[str] = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        entry = registry.get(part)
        if entry.name not in names:
            names.append(entry.name)
    return tuple(names)


def make_collectors(names: Iterable[str], registry: Registry[CollectorEntry] = COLLECTORS
                    ) -> list[Collector]:
    """One collector for each of ``names`` that is not always on, each of whose
    ``validate_environment()`` passed: call before the engine starts.
    :class:`collectors.base.CollectorUnavailable` (its one line names the fix) or
    :class:`UnknownNameError` otherwise."""
    out: list[Collector] = []
    for name in names:
        entry = registry.get(name)
        if entry.load is None:
            continue
        collector = entry.load()
        collector.validate_environment()
        out.append(collector)
    return out


def describe(registry: Registry[CollectorEntry] = COLLECTORS) -> str:
    """``name (summary), …`` for ``--help``."""
    return ", ".join(f"{e.name} ({e.summary})" for e in registry)

