"""Raw-socket HTTP and SSE helpers, so tests see the server's real bytes and writes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes  # de-chunked body
    chunks: list[bytes] = field(default_factory=list)  # one HTTP chunk per server write
    complete: bool = True  # the terminating zero-size chunk (or full Content-Length) arrived
    error: str = ""  # "reset" when the connection was reset
    reads: int = 0  # socket reads that returned data


def _dechunk(data: bytes) -> tuple[list[bytes], bool]:
    chunks: list[bytes] = []
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return chunks, False
        size = int(data[pos:eol].split(b";")[0], 16)
        if size == 0:
            return chunks, data[eol + 2 : eol + 4] == b"\r\n"
        start = eol + 2
        if len(data) < start + size + 2:
            chunks.append(data[start:])
            return chunks, False
        chunks.append(data[start : start + size])
        pos = start + size + 2


async def raw_post(
    url: str,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    timeout_s: float = 10.0,
) -> RawResponse:
    """POST ``body`` as JSON over a fresh connection and read until the server closes."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    payload = orjson.dumps(body)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n{extra}\r\n"
    )
    writer.write(head.encode() + payload)
    await writer.drain()
    data = b""
    error = ""
    reads = 0
    try:
        async with asyncio.timeout(timeout_s):
            while chunk := await reader.read(65536):
                data += chunk
                reads += 1
    except ConnectionResetError:
        error = "reset"
    finally:
        writer.close()
    head_bytes, _, rest = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode().split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if hdrs.get("transfer-encoding") == "chunked":
        chunks, complete = _dechunk(rest)
        return RawResponse(status, hdrs, b"".join(chunks), chunks, complete, error, reads)
    complete = len(rest) == int(hdrs.get("content-length", len(rest)))
    return RawResponse(status, hdrs, rest, [rest], complete, error, reads)


def sse_blocks(body: bytes) -> list[list[bytes]]:
    """The SSE event blocks of ``body`` as lists of lines (CRLF or LF), comments kept."""
    text = body.replace(b"\r\n", b"\n")
    return [block.split(b"\n") for block in text.split(b"\n\n") if block]


def sse_data(body: bytes) -> list[bytes]:
    """The ``data`` payload of every event, like a spec-following SSE parser."""
    out: list[bytes] = []
    for block in sse_blocks(body):
        data = [ln[5:].removeprefix(b" ") for ln in block if ln.startswith(b"data:")]
        if data:
            out.append(b"\n".join(data))
    return out


def sse_json(body: bytes) -> list[Any]:
    """Every data payload, parsed (``[DONE]`` kept as the string)."""
    return [p.decode() if p.strip() == b"[DONE]" else orjson.loads(p) for p in sse_data(body)]


def chat_body(max_tokens: int = 8, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "one two three"}],
        "max_tokens": max_tokens,
        "stream": True,
    }
    body.update(kw)
    return body


def completions_body(max_tokens: int = 8, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "tiny",
        "prompt": "one two three four five",
        "max_tokens": max_tokens,
        "stream": True,
    }
    body.update(kw)
    return body
