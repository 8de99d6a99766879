"""What adapters say beyond :class:`servescope.engines.base.EngineAdapter`.

The base Protocol has one metrics path on the API address. Real engines need more:
Triton serves metrics on another port, TensorRT-LLM has a destructive JSON endpoint plus an
optional Prometheus one, SGLang serves nothing without ``--enable-metrics``, some canonical
signals are sums or ratios of two engine fields, and Triton's TTFT histogram is in ms.
:class:`EngineAdapterExt` adds those members; the functions here fall back to the base
Protocol for an adapter that lacks them, so callers never need to know which kind they hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, Protocol, runtime_checkable

from servescope.engines._argv import Launch, flag_value
from servescope.engines.base import EngineAdapter, Knob, MetricsFormat, Signal, SignalSpec

__all__ = [
    "DerivedSignal",
    "EngineAdapterExt",
    "MetricsEndpoint",
    "derived_signals",
    "engine_manifest_entry",
    "histogram_labels",
    "histogram_scale",
    "launch_of",
    "launch_warnings",
    "metric_notes",
    "metrics_endpoints",
    "metrics_url",
    "served_api_key",
    "tuning_flags",
]

_EMPTY: Mapping[Any, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class MetricsEndpoint:
    """One URL to scrape.

    ``destructive``: every read removes what it returns (TensorRT-LLM ``/metrics``), so every
    body must be kept. ``optional``: a 404 means the engine was started without it; the scraper
    asks once and stops. ``min_interval_s``: the engine may hold the request open this long.
    """

    url: str
    format: MetricsFormat
    destructive: bool = False
    optional: bool = False
    min_interval_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "format": self.format, "destructive": self.destructive,
                "optional": self.optional, "min_interval_s": self.min_interval_s}


@dataclass(frozen=True, slots=True)
class DerivedSignal:
    """A canonical signal computed from several specs when no direct family is present:
    ``sum`` adds the parts (TensorRT-LLM prefix-cache queries = reused + missed blocks),
    ``ratio`` divides the first by the second (KV usage = used / max blocks)."""

    op: Literal["sum", "ratio"]
    parts: tuple[SignalSpec, ...]


@runtime_checkable
class EngineAdapterExt(EngineAdapter, Protocol):
    """An adapter with the members servescope's own adapters all have."""

    def launch(self, argv: Sequence[str]) -> Launch | None:
        """Where this engine's launcher is in ``argv`` (None if it is not there)."""
        ...

    def metrics_endpoints(
        self, argv: Sequence[str], base_url: str,
    ) -> tuple[MetricsEndpoint, ...]:
        """Every metrics URL for a server started by ``argv`` (``[]`` when attaching) whose
        API is at ``base_url``; the first is the primary one."""
        ...

    def launch_warnings(self, argv: Sequence[str]) -> tuple[str, ...]:
        """Problems visible in the command: metrics switched off, a Unix socket, ..."""
        ...

    @property
    def derived_signals(self) -> Mapping[Signal, DerivedSignal]: ...

    @property
    def histogram_scale(self) -> Mapping[str, float]:
        """Family → factor to seconds, for histograms not in seconds (Triton: ms → 0.001)."""
        ...

    @property
    def histogram_labels(self) -> Mapping[str, Mapping[str, str]]:
        """Family → label filter applied by default (SGLang: rank-0 schedulers only)."""
        ...

    @property
    def tuning(self) -> Mapping[Knob, str]:
        """How to change each :class:`Knob` on this engine, in its own flag names."""
        ...

    @property
    def notes(self) -> Mapping[str, str]:
        """Signal or histogram name → how the engine defines it (shown beside the number)."""
        ...


def _ext(adapter: EngineAdapter) -> EngineAdapterExt | None:
    return adapter if isinstance(adapter, EngineAdapterExt) else None


def launch_of(adapter: EngineAdapter, argv: Sequence[str]) -> Launch | None:
    ext = _ext(adapter)
    if ext is not None:
        return ext.launch(argv)
    return Launch(index=len(argv), args=tuple(argv)) if adapter.matches(argv) else None


def metrics_endpoints(adapter: EngineAdapter, argv: Sequence[str],
                      base_url: str) -> tuple[MetricsEndpoint, ...]:
    ext = _ext(adapter)
    if ext is not None:
        return ext.metrics_endpoints(argv, base_url)
    if adapter.metrics_path is None or adapter.metrics_format == "none":
        return ()
    return (MetricsEndpoint(base_url.rstrip("/") + adapter.metrics_path, adapter.metrics_format),)


def metrics_url(adapter: EngineAdapter, argv: Sequence[str], base_url: str) -> str | None:
    """The primary metrics URL (it may be on another port than the API), or None."""
    eps = metrics_endpoints(adapter, argv, base_url)
    return eps[0].url if eps else None


def launch_warnings(adapter: EngineAdapter, argv: Sequence[str]) -> tuple[str, ...]:
    ext = _ext(adapter)
    return ext.launch_warnings(argv) if ext is not None else ()


def derived_signals(adapter: EngineAdapter) -> Mapping[Signal, DerivedSignal]:
    ext = _ext(adapter)
    return ext.derived_signals if ext is not None else _EMPTY


def histogram_scale(adapter: EngineAdapter) -> Mapping[str, float]:
    ext = _ext(adapter)
    return ext.histogram_scale if ext is not None else _EMPTY


def histogram_labels(adapter: EngineAdapter) -> Mapping[str, Mapping[str, str]]:
    ext = _ext(adapter)
    return ext.histogram_labels if ext is not None else _EMPTY


def metric_notes(adapter: EngineAdapter) -> Mapping[str, str]:
    ext = _ext(adapter)
    return ext.notes if ext is not None else _EMPTY


def engine_manifest_entry(adapter: EngineAdapter, argv: Sequence[str],
                          base_url: str) -> dict[str, Any]:
    """What a run records as ``manifest.extra["engine"]``: the adapter's name (the analyzers
    look the adapter up by it), where it listened, and what was scraped."""
    return {
        "name": adapter.name,
        "base_url": base_url,
        "readiness_paths": list(adapter.readiness_paths),
        "metrics": [ep.to_json() for ep in metrics_endpoints(adapter, argv, base_url)],
        "warnings": list(launch_warnings(adapter, argv)),
    }


def served_api_key(adapter: EngineAdapter, argv: Sequence[str],
                   env: Mapping[str, str]) -> str | None:
    """The key the serving command makes its server require (vLLM and SGLang ``--api-key K``
    or ``--api-key=K``; vLLM also ``VLLM_API_KEY``, from an ``env``/``VAR=value`` prefix of the
    command or the environment it inherits), or None. For a command that the adapter does not
    recognize (``--engine`` given), the whole command is searched."""
    flags: tuple[str, ...] = getattr(adapter, "api_key_flags", ("--api-key",))
    names: tuple[str, ...] = getattr(adapter, "api_key_env", ())
    launch = launch_of(adapter, argv)
    if flags and (key := flag_value(launch.args if launch else argv, *flags)):
        return key
    for name in names:
        given = [tok.partition("=")[2] for tok in argv if tok.startswith(f"{name}=")]
        if given and given[-1]:
            return given[-1]
        if env.get(name):
            return env[name]
    return None


def tuning_flags(adapter: EngineAdapter) -> Mapping[Knob, str]:
    """The adapter's flag advice per knob (empty for an adapter without any)."""
    ext = _ext(adapter)
    return ext.tuning if ext is not None else _EMPTY
