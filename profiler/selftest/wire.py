"""Bytes on the wire, in vLLM's OpenAI-compatible format (checked against real captures).

The per-event hot path builds a chunk from pre-encoded pieces around the token text and a
counter; nothing is ``json.dumps``-ed per event except the short text (orjson, which like
vLLM's pydantic writes non-ASCII as raw UTF-8). Streams follow vLLM 0.32 byte for byte:
chat opens with a role-only chunk (``"delta":{"role":"assistant","content":""}``), the last
content chunk carries ``finish_reason`` and ``stop_reason``, ``include_usage`` adds a
``"choices":[]`` usage chunk before ``data: [DONE]``, and ``continuous_usage_stats`` adds
cumulative ``usage`` to every chunk. Non-stream completions bodies are modelled on vLLM's
response classes (no capture of one exists yet); chat bodies follow ``chat_nonstream.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "ChunkEncoder",
    "Framing",
    "error_body",
    "event_text",
    "framing_for",
    "nonstream_body",
    "split_points",
]

SYSTEM_FINGERPRINT = "servescope-refserver"
_ASCII_PIECE = " t%d"
# vLLM-like detokenizer output: multi-byte characters, a token that decodes to nothing yet
# (""), and U+FFFD where a token ends inside a character.
_UTF8_PIECES = (" é%d", "中", "", "\ufffd%d", "🙂", " ü%d")


def token_text(index: int, utf8: bool) -> str:
    """The deterministic text of token ``index`` (0-based within the response)."""
    if not utf8:
        return _ASCII_PIECE % index
    pattern = _UTF8_PIECES[index % len(_UTF8_PIECES)]
    return pattern % index if "%d" in pattern else pattern


def event_text(first_token: int, count: int, utf8: bool) -> str:
    """The text of an event carrying tokens ``first_token .. first_token + count - 1``."""
    if count == 1:
        return token_text(first_token, utf8)
    return "".join(token_text(i, utf8) for i in range(first_token, first_token + count))


@dataclass(frozen=True, slots=True)
class Framing:
    """How events are framed: prefix, terminator, comment lines."""

    data_prefix: bytes = b"data: "
    json_end: bytes = b"\n\n"
    done: bytes = b"data: [DONE]\n\n"
    before_event: bytes = b""  # comment block written before every event
    after_headers: bytes = b""  # comment block written right after the headers


def framing_for(faults: frozenset[str]) -> Framing:
    """The framing for a request's format variants."""
    eol = b"\r\n" if "crlf" in faults else b"\n"
    prefix = b"data:" if "nospace" in faults else b"data: "
    json_end = (b" " if "trailing_space" in faults else b"") + eol + eol
    comments = "comments" in faults
    return Framing(
        data_prefix=prefix,
        json_end=json_end,
        done=prefix + b"[DONE]" + eol + eol,
        before_event=b": ping" + eol + eol if comments else b"",
        after_headers=b": keep-alive" + eol + eol if comments else b"",
    )


def _usage(prompt: int, completion: int, *, details: bool) -> bytes:
    tail = b',"completion_tokens_details":null}' if details else b"}"
    return b'{"prompt_tokens":%d,"total_tokens":%d,"completion_tokens":%d%b' % (
        prompt,
        prompt + completion,
        completion,
        tail,
    )


class ChunkEncoder:
    """Builds the SSE events of one streamed response (``endpoint`` "chat" or "completions")."""

    __slots__ = (
        "_content_head",
        "_continuous",
        "_end",
        "_head",
        "_mid",
        "_prompt",
        "chat",
        "framing",
    )

    def __init__(
        self,
        *,
        endpoint: str,
        response_id: str,
        created: int,
        model: str,
        prompt_tokens: int,
        continuous_usage: bool,
        framing: Framing,
    ) -> None:
        self.chat = endpoint == "chat"
        obj = b"chat.completion.chunk" if self.chat else b"text_completion"
        self.framing = framing
        self._prompt = prompt_tokens
        self._continuous = continuous_usage
        self._head = b'%b%b{"id":%b,"object":"%b","created":%d,"model":%b,"choices":' % (
            framing.before_event,
            framing.data_prefix,
            orjson.dumps(response_id),
            obj,
            created,
            orjson.dumps(model),
        )
        if self.chat:
            self._content_head = self._head + b'[{"index":0,"delta":{"content":'
            self._mid = b'},"logprobs":null,"finish_reason":%b,"token_ids":null}]'
        else:
            self._content_head = self._head + b'[{"index":0,"text":'
            self._mid = (
                b',"logprobs":null,"finish_reason":%b,"prompt_token_ids":null,"token_ids":null}]'
            )
        self._end = b"}" + framing.json_end

    def role(self) -> bytes:
        """Chat's opening role-only chunk."""
        usage = b',"usage":' + _usage(self._prompt, 0, details=True) if self._continuous else b""
        return b"%b%b%b%b" % (
            self._head,
            b'[{"index":0,"delta":{"role":"assistant","content":""},'
            b'"logprobs":null,"finish_reason":null}]',
            usage,
            b',"prompt_token_ids":null,"prompt_text":null' + self._end,
        )

    def content(self, text: str, tokens_cum: int, finish_reason: str | None = None) -> bytes:
        """A content chunk; ``tokens_cum`` is the cumulative completion tokens so far."""
        if finish_reason is None:
            fin = b'null,"stop_reason":null' if not self.chat else b"null"
            mid = self._mid % fin
        else:
            mid = self._mid % (b'"%b","stop_reason":null' % finish_reason.encode())
        if self._continuous:
            return b'%b%b%b,"usage":%b%b' % (
                self._content_head,
                orjson.dumps(text),
                mid,
                _usage(self._prompt, tokens_cum, details=True),
                self._end,
            )
        return b"%b%b%b%b" % (self._content_head, orjson.dumps(text), mid, self._end)

    def usage(self, completion_tokens: int) -> bytes:
        """The ``"choices":[]`` usage chunk sent before ``[DONE]``."""
        return b'%b[],"usage":%b,"system_fingerprint":"%b"%b' % (
            self._head,
            _usage(self._prompt, completion_tokens, details=False),
            SYSTEM_FINGERPRINT.encode(),
            self._end,
        )

    def done(self) -> bytes:
        """The ``[DONE]`` sentinel."""
        return self.framing.before_event + self.framing.done

    def error(self, message: str, code: int = 500) -> bytes:
        """An error event inside the stream, as vLLM sends it."""
        return b"%b%b%b%b" % (
            self.framing.before_event,
            self.framing.data_prefix,
            error_body(message, code),
            self.framing.json_end,
        )


_ERROR_TYPES = {
    400: "BadRequestError",
    404: "NotFoundError",
    429: "RateLimitError",
    500: "InternalServerError",
}


def error_body(message: str, code: int) -> bytes:
    """OpenAI-style error JSON: ``{"error": {"message", "type", "param", "code"}}``."""
    kind = _ERROR_TYPES.get(code, "InternalServerError")
    return orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})


def nonstream_body(
    *,
    endpoint: str,
    response_id: str,
    created: int,
    model: str,
    text: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int | None,
) -> bytes:
    """A complete non-streamed response; ``completion_tokens`` None omits usage."""
    usage: dict[str, Any] | None = None
    if completion_tokens is not None:
        usage = {
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens,
            "prompt_tokens_details": None,
            "completion_tokens_details": None,
        }
    fin = {"finish_reason": finish_reason, "stop_reason": None, "token_ids": None}
    head: dict[str, Any] = {"id": response_id}
    tail: dict[str, Any]
    if endpoint == "chat":
        message = {"role": "assistant", "content": text, "refusal": None, "annotations": None}
        message |= {"audio": None, "function_call": None, "reasoning": None}
        choice = {"index": 0, "message": message, "logprobs": None} | fin
        choice["routed_experts"] = None
        head["object"] = "chat.completion"
        tail = {"prompt_logprobs": None, "prompt_token_ids": None, "prompt_text": None}
        tail |= {"kv_transfer_params": None, "ec_transfer_params": None, "metrics": None}
    else:
        choice = {"index": 0, "text": text, "logprobs": None} | fin
        choice |= {"prompt_logprobs": None, "prompt_token_ids": None}
        head["object"] = "text_completion"
        tail = {"kv_transfer_params": None}
    body = head | {"created": created, "model": model, "choices": [choice]}
    body |= {"service_tier": None, "system_fingerprint": SYSTEM_FINGERPRINT}
    if usage is not None:
        body["usage"] = usage
    body |= tail
    return orjson.dumps(body)


def split_points(data: bytes) -> list[int]:
    """Where ``split_writes`` cuts an event: inside its first multi-byte UTF-8 character
    (byte offset 7, inside ``data: {``, when it has none) and between the two bytes that
    end it, so the blank line itself arrives in two reads."""
    first = 7
    for i, byte in enumerate(data):
        if byte >= 0xC0:  # lead byte of a multi-byte sequence
            first = i + 1
            break
    cuts = sorted({first, len(data) - 1})
    return [c for c in cuts if 0 < c < len(data)]
