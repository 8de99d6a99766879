"""Any OpenAI-compatible server (``--engine openai``): no command recognition, no signals."""

from __future__ import annotations

from servescope.engines.spec import EngineSpec, MetricsRoute

__all__ = ["SPEC"]

# A server we know only as OpenAI-compatible. Chosen by name, never detected from a command:
# the whole command is its own, so ``--host``/``--port`` are read if it has them (most servers
# use these names). ``/metrics`` is scraped if it exists (optional: asked once) and kept raw,
# with no canonical signal mapping.
SPEC = EngineSpec(
    name="openai",
    display_name="OpenAI-compatible server",
    source="the OpenAI API's /v1/models",
    launcher=None,
    default_host=None,
    default_port=8000,
    readiness_paths=("/v1/models",),
    metrics=(MetricsRoute("/metrics", "prometheus", optional=True),),
)
