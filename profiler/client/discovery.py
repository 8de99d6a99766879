"""Ask a server which model it serves (``GET /v1/models``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

__all__ = ["DiscoveryError", "discover_model"]


class DiscoveryError(RuntimeError):
    """The server could not be asked, or named no model."""


def discover_model(base_url: str, api_key: str | None = None, timeout_s: float = 10.0) -> str:
    url = base_url.rstrip("/").removesuffix("/v1") + "/v1/models"
    req = urllib.request.Request(url)  # noqa: S310 - http(s) URL checked by Target
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310
            data = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise DiscoveryError(f"{url} answered HTTP {exc.code}; pass --model") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DiscoveryError(f"cannot list models at {url}: {exc}; is the server up?") from exc
    models = data.get("data") if isinstance(data, dict) else None
    if not models or not isinstance(models, list) or "id" not in models[0]:
        raise DiscoveryError(f"{url} lists no model; pass --model")
    return str(models[0]["id"])
