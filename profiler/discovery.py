"""Ask a server which model it serves (``GET /v1/models``).

Bounded like every request servescope makes for itself (:mod:`profiler.httpget`): in total
time (a server trickling its headers cannot hold it) and in size (1 MiB); the page is
checked for its shape, so a hostile or broken page is one :class:`DiscoveryError` line.
"""

from __future__ import annotations

import json

from profiler.httpget import get
from servescope.redact import redact_text

__all__ = ["MAX_MODELS_BYTES", "DiscoveryError", "discover_model"]

MAX_MODELS_BYTES = 1 << 20  # a model list is a few kB; a page of 10 MB is not one


class DiscoveryError(RuntimeError):
    """The server could not be asked, or named no model."""


def discover_model(base_url: str, api_key: str | None = None, timeout_s: float = 10.0) -> str:
    """The ``id`` of the first model ``/v1/models`` lists; :class:`DiscoveryError` (one line,
    ending in what to do) on anything else, within ``timeout_s`` in all."""
    url = base_url.rstrip("/").removesuffix("/v1") + "/v1/models"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    answer = get(url, headers=headers, timeout_s=timeout_s, max_bytes=MAX_MODELS_BYTES)
    if answer.error and answer.status < 0:
        raise DiscoveryError(_one_line(f"cannot list models at {url}: {answer.error}; "
                                       "is the server up? (or pass --model)"))
    if answer.status != 200:
        raise DiscoveryError(f"{url} answered HTTP {answer.status}; pass --model")
    if answer.error:  # a 200 answer cut at the size cap
        raise DiscoveryError(f"{url} answered more than {MAX_MODELS_BYTES:,} bytes, which is "
                             "not a model list; pass --model")
    try:
        data = json.loads(answer.body)
    except (ValueError, RecursionError):
        raise DiscoveryError(f"{url} did not answer JSON; pass --model") from None
    models = data.get("data") if isinstance(data, dict) else None
    if not isinstance(models, list) or not models:
        raise DiscoveryError(f"{url} lists no model (no non-empty \"data\" list); "
                             "pass --model")
    first = models[0]
    model_id = first.get("id") if isinstance(first, dict) else None
    if not isinstance(model_id, str) or not model_id.strip():
        raise DiscoveryError(f"{url} lists a model without a string \"id\" "
                             f"({_one_line(json.dumps(first))[:60]}); pass --model")
    return model_id


def _one_line(text: str) -> str:
    return redact_text(" ".join(text.split()))[:300]
