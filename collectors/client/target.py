"""Where requests go and how they are shaped (OpenAI-compatible completions or chat)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson

from servescope.tracecontext import TRACEPARENT, traceparent

__all__ = ["Endpoint", "Target", "TargetError"]

Endpoint = Literal["completions", "chat"]
_PATHS: dict[str, str] = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}


def _tokenizer_file(path: str) -> Path:
    p = Path(path).expanduser()
    return p / "tokenizer.json" if p.is_dir() else p


class TargetError(ValueError):
    """An unusable target (bad URL, unknown endpoint)."""


@dataclass(frozen=True, slots=True)
class Target:
    """An OpenAI-compatible server and the request options servescope sends it.

    ``per_chunk_usage`` asks for ``stream_options.continuous_usage_stats`` so every event
    carries the cumulative completion-token count (vLLM, SGLang and TensorRT-LLM honour it);
    that is what makes per-token ITL exact when one event carries several tokens.

    ``stall_timeout_s`` bounds, for a streamed request, both the wait between two reads and
    the whole wait for the response headers. ``max_response_bytes`` bounds a non-streamed
    answer (64 MiB: a completion of tens of thousands of tokens with logprobs is a few MB);
    a larger one ends ``invalid_response`` and its connection is dropped. One SSE event is
    bounded by the smaller of this and 16 MiB.
    """

    base_url: str
    model: str
    endpoint: Endpoint = "completions"
    api_key: str | None = None
    stream: bool = True
    per_chunk_usage: bool = True
    ignore_eos: bool = True
    request_timeout_s: float = 600.0
    stall_timeout_s: float = 120.0
    max_response_bytes: int = 64 << 20
    # False: the server ends a stream with the body, after a finish_reason, never with
    # "data: [DONE]" (transformers serve); such a stream is complete, not truncated
    done_marker: bool = True
    # tokenizer.json (or a directory holding one): without per-chunk usage, each event's
    # tokens are counted by the client from its text (flagged, checked against the usage)
    tokenizer: str | None = None
    # time each event by its own packet (a packet socket; collectors/client/wire_tap.py)
    packet_timestamps: bool = False
    extra_body: dict[str, Any] = field(default_factory=dict)
    extra_headers: dict[str, str] = field(default_factory=dict)
    # the run's id: each request's W3C traceparent derives from it and its x-request-id
    trace_seed: str = ""

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise TargetError(f"target URL must look like http://HOST:PORT, got {self.base_url!r}")
        if self.endpoint not in _PATHS:
            raise TargetError(f"endpoint must be one of {sorted(_PATHS)}, got {self.endpoint!r}")
        if self.request_timeout_s <= 0 or self.stall_timeout_s <= 0:
            raise TargetError("timeouts must be positive")
        if self.max_response_bytes < 1:
            raise TargetError("max_response_bytes must be positive")
        if self.tokenizer is not None and not _tokenizer_file(self.tokenizer).is_file():
            raise TargetError(f"tokenizer: no tokenizer.json at {self.tokenizer}")

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/").removesuffix("/v1") + _PATHS[self.endpoint]

    @property
    def is_chat(self) -> bool:
        return self.endpoint == "chat"

    def headers(self, x_request_id: str) -> dict[str, str]:
        h = {"Content-Type": "application/json", "x-request-id": x_request_id,
             TRACEPARENT: traceparent(self.trace_seed, x_request_id)}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        h.update(self.extra_headers)
        return h

    def body(self, prompt: str | list[dict[str, str]], max_tokens: int) -> bytes:
        """The JSON request body. ``prompt`` is text, or chat messages for the chat endpoint."""
        d: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens, "stream": self.stream}
        if self.is_chat:
            d["messages"] = (
                [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            )
        else:
            d["prompt"] = prompt
        if self.stream:
            d["stream_options"] = {"include_usage": True}
            if self.per_chunk_usage:
                d["stream_options"]["continuous_usage_stats"] = True
        if self.ignore_eos:
            d["ignore_eos"] = True
        d.update(self.extra_body)
        return orjson.dumps(d)
