"""OpenTelemetry GenAI attribute names: what engines send, what the current conventions say.

The engines still emit old and private keys (vLLM 0.32–0.34 ``gen_ai.usage.prompt_tokens``
and ``gen_ai.latency.*``; SGLang adds ``gen_ai.usage.cached_tokens``; TensorRT-LLM
``gen_ai.latency.kv_cache_transfer_time``), while the GenAI semantic conventions (0.66b2
registry; ``shared/reference/gpu-half.md`` §F) renamed the usage keys and name no per-stage
latencies at all. :data:`SPAN_COLUMNS` maps every spelling onto one column each, the current
name first; :data:`CURRENT` holds the names servescope writes when it exports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

__all__ = ["CURRENT", "LATENCY_COLUMNS", "SPAN_COLUMNS", "TOKEN_COLUMNS", "Generation",
           "map_attributes"]

Generation = Literal["current", "deprecated", "private"]

# column → ((attribute, generation), ...), the preferred spelling first
SPAN_COLUMNS: Mapping[str, tuple[tuple[str, Generation], ...]] = {
    "ttft_ns": (("gen_ai.response.time_to_first_chunk", "current"),
                ("gen_ai.latency.time_to_first_token", "private")),
    "e2e_ns": (("gen_ai.latency.e2e", "private"),),
    "queue_ns": (("gen_ai.latency.time_in_queue", "private"),),
    "prefill_ns": (("gen_ai.latency.time_in_model_prefill", "private"),),
    "decode_ns": (("gen_ai.latency.time_in_model_decode", "private"),),
    "inference_ns": (("gen_ai.latency.time_in_model_inference", "private"),),
    "kv_transfer_ns": (("gen_ai.latency.kv_cache_transfer_time", "private"),),
    "prompt_tokens": (("gen_ai.usage.input_tokens", "current"),
                      ("gen_ai.usage.prompt_tokens", "deprecated")),
    "output_tokens": (("gen_ai.usage.output_tokens", "current"),
                      ("gen_ai.usage.completion_tokens", "deprecated")),
    "cached_tokens": (("gen_ai.usage.cache_read.input_tokens", "current"),
                      ("gen_ai.usage.cached_tokens", "private")),
    "engine_request_id": (("gen_ai.response.id", "current"),
                          ("gen_ai.request.id", "private")),
}
LATENCY_COLUMNS = ("ttft_ns", "e2e_ns", "queue_ns", "prefill_ns", "decode_ns", "inference_ns",
                   "kv_transfer_ns")  # seconds on the wire, integer nanoseconds here
TOKEN_COLUMNS = ("prompt_tokens", "output_tokens", "cached_tokens")

# what servescope writes on export (GenAI conventions, 0.66b2 registry)
CURRENT: Mapping[str, str] = {
    "operation": "gen_ai.operation.name",
    "provider": "gen_ai.provider.name",
    "request_model": "gen_ai.request.model",
    "max_tokens": "gen_ai.request.max_tokens",
    "stream": "gen_ai.request.stream",
    "response_id": "gen_ai.response.id",
    "finish_reasons": "gen_ai.response.finish_reasons",
    "time_to_first_chunk": "gen_ai.response.time_to_first_chunk",
    "input_tokens": "gen_ai.usage.input_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
    "cached_tokens": "gen_ai.usage.cache_read.input_tokens",
    "token_type": "gen_ai.token.type",
    "error_type": "error.type",
    "server_address": "server.address",
    "server_port": "server.port",
}


def map_attributes(attrs: Mapping[str, object]
                   ) -> tuple[dict[str, int | str], dict[str, Generation]]:
    """The span's attributes as columns (latencies in integer ns, counts as int, the engine's
    request id as str; a column none of whose spellings is present is left out), and the
    generation of the spelling each column came from."""
    out: dict[str, int | str] = {}
    gen: dict[str, Generation] = {}
    for column, names in SPAN_COLUMNS.items():
        for name, generation in names:
            if name not in attrs:
                continue
            value = _value(column, attrs[name])
            if value is None:
                continue
            out[column], gen[column] = value, generation
            break
    return out, gen


def _value(column: str, raw: object) -> int | str | None:
    if column == "engine_request_id":
        return str(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        number = float(raw)
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:  # not a duration or a count
        return None
    return round(number * 1e9) if column in LATENCY_COLUMNS else int(number)
