"""Text for the HTML report: escaping, number formats and each headline metric's definition.

Every string that reaches the page goes through :func:`esc` (HTML text and attribute values)
or, inside a plotly figure, :func:`plot_text` (plotly renders its labels as pseudo-HTML and
decodes entities, so an escaped ``<script>`` shows as the literal text). JSON embedded in a
``<script>`` element goes through :func:`script_json`, which escapes ``<``, ``>`` and ``&``
(so neither ``</script>`` nor ``<!--`` can occur in it) and the two JavaScript line
separators.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from typing import Any

from servescope.redact import redact_argv, redact_text
from servescope.units import fmt_ms

__all__ = [
    "DEFINITIONS",
    "clean_json",
    "esc",
    "fmt_ms",
    "fmt_num",
    "fmt_pct",
    "plot_text",
    "redacted_command",
    "script_json",
    "short",
]

# One line each, the same definitions as docs/metrics.md (which has the full text).
DEFINITIONS: dict[str, str] = {
    "ttft": "Time to first token: from the request body written to the socket to the first "
            "streamed event that carried text or a new token.",
    "itl": "Inter-token latency: the gap between consecutive tokens of one request; an event "
           "bringing k tokens after a gap g counts as k gaps of g / k. Pooled over requests.",
    "tpot": "Time per output token: (E2E − TTFT) / (output tokens − 1), one value per request.",
    "e2e": "End-to-end latency: from the request sent to its last output event.",
    "throughput": "Successful requests (and their output tokens) per second, over the window "
                  "from the first send to the last end of the measured requests.",
    "goodput": "Requests per second that succeeded and met every service-level objective "
               "(--slo); needs an SLO.",
    "error_rate": "Share of measured requests that did not succeed (HTTP errors, error "
                  "events, truncated streams, timeouts, connection errors, cancelled).",
}


def esc(value: object) -> str:
    """HTML-escaped text (quotes too, so it is safe in attribute values)."""
    return html.escape(str(value), quote=True)


def plot_text(value: object) -> str:
    """Text for a plotly label, title or hover: escaped like HTML (plotly decodes entities
    for display and interprets tags, so an unescaped ``<b>`` would restyle it)."""
    return html.escape(str(value), quote=False)


def short(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redacted_command(argv: Sequence[str]) -> str:
    """A command line for display, secrets masked again (runs written by old versions or
    imported from elsewhere may not have been)."""
    return " ".join(redact_text(a) for a in redact_argv([str(a) for a in argv]))


def _finite(v: float | None) -> float | None:
    """``v`` when it is a finite number, else None."""
    return v if v is not None and math.isfinite(v) else None


def fmt_num(v: float | None, digits: int = 2) -> str:
    x = _finite(v)
    return "–" if x is None else f"{x:,.{digits}f}"


def fmt_pct(frac: float | None, digits: int = 1) -> str:
    x = _finite(frac)
    return "–" if x is None else f"{x * 100:.{digits}f} %"


def clean_json(value: Any) -> Any:
    """``value`` with NaN and infinities as ``None`` (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def script_json(value: Any) -> str:
    """JSON safe to place inside a ``<script>`` element."""
    text = json.dumps(clean_json(value), separators=(",", ":"), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
