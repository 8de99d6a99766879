"""Any OpenAI-compatible server (``--engine openai``): no command recognition, no signals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from servescope.engines._argv import Launch, connect_host, flag_value, parse_port, strip_wrappers
from servescope.engines._defaults import AdapterDefaults
from servescope.engines.base import Histogram, MetricsFormat, Signal, SignalSpec
from servescope.engines.extensions import MetricsEndpoint

__all__ = ["OpenAIGenericAdapter"]


@dataclass(frozen=True, slots=True)
class OpenAIGenericAdapter(AdapterDefaults):
    """A server we know only as OpenAI-compatible. Chosen by name, never detected from a
    command. Ready when ``/v1/models`` answers 200; ``/metrics`` is scraped if it exists
    (optional: asked once) and kept raw, with no canonical signal mapping."""

    @property
    def name(self) -> str:
        return "openai"

    @property
    def default_port(self) -> int:
        return 8000

    def launch(self, argv: Sequence[str]) -> Launch | None:  # noqa: ARG002 - Protocol signature
        return None

    def matches(self, argv: Sequence[str]) -> bool:  # noqa: ARG002 - Protocol signature
        return False

    def address(self, argv: Sequence[str]) -> tuple[str, int]:
        """``--host``/``--port`` if the command has them (most servers use these names)."""
        args = strip_wrappers(argv)
        port = parse_port(flag_value(args, "--port"), "--port", self.default_port)
        return connect_host(flag_value(args, "--host")), port

    @property
    def readiness_paths(self) -> Sequence[str]:
        return ("/v1/models",)

    @property
    def metrics_path(self) -> str | None:
        return "/metrics"

    @property
    def metrics_format(self) -> MetricsFormat:
        return "prometheus"

    def metrics_endpoints(
        self, argv: Sequence[str], base_url: str,  # noqa: ARG002 - Protocol signature
    ) -> tuple[MetricsEndpoint, ...]:
        return (MetricsEndpoint(base_url.rstrip("/") + "/metrics", "prometheus", optional=True),)

    def launch_warnings(
        self, argv: Sequence[str],  # noqa: ARG002 - Protocol signature
    ) -> tuple[str, ...]:
        return ()

    @property
    def signals(self) -> Mapping[Signal, SignalSpec]:
        return MappingProxyType({})

    @property
    def histograms(self) -> Mapping[Histogram, tuple[str, ...]]:
        return MappingProxyType({})

    @property
    def notes(self) -> Mapping[str, str]:
        return MappingProxyType({})
