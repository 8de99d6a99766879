"""The SSE parser on real vLLM bytes and on every framing variant, fed in arbitrary pieces."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from collectors.client.sse import SSEParser

DATA = Path(__file__).parent.parent / "data" / "vllm_cpu"


def feed_all(pieces: list[bytes]) -> list[bytes]:
    p = SSEParser()
    out: list[bytes] = []
    for piece in pieces:
        out.extend(p.feed(piece))
    return out + p.flush()


def split_randomly(raw: bytes, seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    cuts = sorted(rnd.sample(range(1, len(raw)), k=min(len(raw) - 1, 40)))
    return [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]


@pytest.mark.parametrize(
    "name", ["chat_stream.sse", "completions_stream.sse", "chat_stream_continuous_usage.sse"]
)
def test_real_vllm_stream_whole_and_in_random_pieces(name: str) -> None:
    raw = (DATA / name).read_bytes()
    whole = feed_all([raw])
    assert whole[-1] == b"[DONE]"
    expected = [line[6:] for line in raw.split(b"\n") if line.startswith(b"data: ")]
    assert whole == expected
    for seed in range(20):
        assert feed_all(split_randomly(raw, seed)) == expected
    # every payload but [DONE] is one JSON object
    for payload in whole[:-1]:
        assert isinstance(json.loads(payload), dict)


def test_byte_by_byte_including_multibyte_utf8() -> None:
    raw = 'data: {"t":"é中🙂"}\n\ndata: [DONE]\n\n'.encode()
    assert feed_all([raw[i : i + 1] for i in range(len(raw))]) == [
        '{"t":"é中🙂"}'.encode(),
        b"[DONE]",
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"data:{\"a\":1}\n\n", [b'{"a":1}']),  # no space after the colon
        (b"data: {\"a\":1} \n\n", [b'{"a":1}']),  # TensorRT-LLM's trailing space
        (b"data: 1\r\n\r\ndata: 2\r\n\r\n", [b"1", b"2"]),  # CRLF
        (b"data: 1\r\rdata: 2\r\r", [b"1", b"2"]),  # bare CR
        (b": keep-alive\n\ndata: 1\n\n: ping\n\n", [b"1"]),  # comment lines
        (b"event: x\nid: 7\ndata: 1\n\n", [b"1"]),  # other fields ignored
        (b"data: a\ndata: b\n\n", [b"a\nb"]),  # multi-line data
        (b"data: 1\n\ndata: 2\n\ndata: 3\n\n", [b"1", b"2", b"3"]),  # several in one read
        (b"data: 1\n\ndata: [DONE]", [b"1", b"[DONE]"]),  # last event not closed
    ],
)
def test_framing_variants(raw: bytes, expected: list[bytes]) -> None:
    assert feed_all([raw]) == expected
    assert feed_all([raw[i : i + 1] for i in range(len(raw))]) == expected


def test_crlf_split_between_reads_is_one_line_end() -> None:
    # "\r" ends one read and "\n" starts the next: still one line end, not two
    assert feed_all([b"data: 1\r", b"\ndata: 2\r\n\r\n"]) == [b"1\n2"]


def test_comment_only_stream_yields_nothing() -> None:
    assert feed_all([b": hello\n\n: world\n\n"]) == []


def test_pending_bytes_reports_partial_event() -> None:
    p = SSEParser()
    assert p.feed(b"data: {\"a\"") == []
    assert p.pending_bytes == len(b"data: {\"a\"")
    assert p.feed(b":1}\n\n") == [b'{"a":1}']
    assert p.pending_bytes == 0


def test_an_event_that_never_ends_is_held_in_linear_time() -> None:
    """A server that never sends a blank line: the parser holds the pieces (the client cuts
    the stream at its cap on ``pending_bytes``) instead of re-copying its whole buffer on
    every read, which took minutes at this size."""
    import time

    p = SSEParser()
    line = b"data: " + b"x" * 1000 + b"\n"
    t0 = time.perf_counter()
    for _ in range(20_000):  # 20 MB in 1 kB reads
        assert p.feed(line) == []
    assert time.perf_counter() - t0 < 10  # about 10 ms; quadratic copying took minutes
    assert p.pending_bytes == 20_000 * len(line)
    (payload,) = p.feed(b"\n")
    assert payload == b"\n".join([b"x" * 1000] * 20_000)
    assert p.pending_bytes == 0


def test_blank_line_split_across_held_pieces() -> None:
    p = SSEParser()
    assert p.feed(b"data: a") == []
    assert p.feed(b"b\n") == []
    assert p.feed(b"\ndata: c") == [b"ab"]
    assert p.pending_bytes == len(b"data: c")
    assert p.flush() == [b"c"]
