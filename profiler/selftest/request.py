"""Parsing an OpenAI-style completions or chat request into what the server will do.

Prompt tokens are whitespace-separated words of the prompt (or the length of a token-id
prompt) unless the schedule's ``prompt_tokens`` says otherwise: a stand-in for a tokenizer,
good enough for usage fields whose exact truth the test controls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from profiler.selftest.schedule import RefSchedule

__all__ = ["RequestError", "StreamRequest", "parse_request"]


class RequestError(ValueError):
    """The request is malformed; the server answers 400 with this message."""


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """A parsed request and the schedule that applies to it."""

    endpoint: str  # "chat" or "completions"
    stream: bool
    model: str | None
    max_tokens: int | None
    include_usage: bool
    continuous_usage: bool
    prompt_tokens: int
    output_tokens: int  # tokens the server will generate
    finish_reason: str
    schedule: RefSchedule


def _words(text: object) -> int:
    if isinstance(text, str):
        return len(text.split())
    raise RequestError(f"expected text, got {type(text).__name__}")


def _prompt_words(body: dict[str, Any], endpoint: str) -> int:
    if endpoint == "completions":
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            return _words(prompt)
        if isinstance(prompt, list) and all(isinstance(t, int) for t in prompt):
            return len(prompt)
        if isinstance(prompt, list) and len(prompt) == 1:
            only = prompt[0]
            if isinstance(only, list) and all(isinstance(t, int) for t in only):
                return len(only)
            return _words(only)
        raise RequestError("'prompt' must be a string or a list of token ids (batches unsupported)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list")
    total = 0
    for message in messages:
        if not isinstance(message, dict):
            raise RequestError("each message must be an object")
        content = message.get("content")
        if content is None:
            continue
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += _words(part["text"])
        else:
            total += _words(content)
    return total


def _opt_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RequestError(f"'{name}' must be an integer >= 1, got {value!r}")
    return value


def _flag(obj: dict[str, Any], name: str) -> bool:
    value = obj.get(name, False)
    if not isinstance(value, bool):
        raise RequestError(f"'{name}' must be a boolean, got {value!r}")
    return value


def parse_request(raw: bytes, endpoint: str, default: RefSchedule) -> StreamRequest:
    """Parse a request body for ``endpoint`` ("chat" or "completions")."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RequestError("request body must be a JSON object")
    try:
        schedule = default.merge(body.get("servescope_ref") or {})
    except (TypeError, ValueError) as exc:
        raise RequestError(f"servescope_ref: {exc}") from None
    n = body.get("n", 1)
    if n != 1:
        raise RequestError(f"'n' must be 1 on the reference server, got {n!r}")
    max_tokens = _opt_int(body, "max_tokens")
    if endpoint == "chat":
        max_tokens = _opt_int(body, "max_completion_tokens") or max_tokens
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise RequestError("'stream_options' must be an object")
    include_usage = _flag(stream_options, "include_usage")
    prompt_words = _prompt_words(body, endpoint)
    output_tokens, finish_reason = schedule.output_plan(
        max_tokens, ignore_eos=_flag(body, "ignore_eos")
    )
    model = body.get("model")
    return StreamRequest(
        endpoint=endpoint,
        stream=_flag(body, "stream"),
        model=model if isinstance(model, str) and model else None,
        max_tokens=max_tokens,
        include_usage=include_usage,
        continuous_usage=include_usage and _flag(stream_options, "continuous_usage_stats"),
        prompt_tokens=prompt_words if schedule.prompt_tokens is None else schedule.prompt_tokens,
        output_tokens=output_tokens,
        finish_reason=finish_reason,
        schedule=schedule,
    )
