"""Incremental Server-Sent Events parser (the framing part of the WHATWG SSE spec).

Fed the raw bytes of each network read, it returns the ``data`` payloads of the events that
those bytes complete. It holds up to several events in one read, one event split across
reads (anywhere, even inside a multi-byte UTF-8 character: payloads stay bytes), ``data:``
with or without the space, LF, CRLF and CR line ends (a CRLF split between two reads
included), comment/keep-alive lines, multi-line data, and TensorRT-LLM's trailing space
(``data: {json} \\n\\n``). Fields other than ``data`` (event, id, retry) are ignored: no
OpenAI-compatible server uses them for generation.
"""

from __future__ import annotations

__all__ = ["SSEParser"]


class SSEParser:
    """The bytes of an event not yet ended by a blank line are held as a list of pieces, so
    a server that never sends a blank line costs linear time; :attr:`pending_bytes` says how
    much is held (the client drops a stream whose pending event grows past its cap)."""

    __slots__ = ("_cr_pending", "_parts", "_pending")

    def __init__(self) -> None:
        self._parts: list[bytes] = []  # the unfinished event, never ending in a full block
        self._pending = 0
        self._cr_pending = False

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add one read's bytes; return the payloads of the events now complete."""
        if self._cr_pending:
            chunk = b"\r" + chunk
            self._cr_pending = False
        if b"\r" in chunk:
            if chunk.endswith(b"\r"):
                # the \n of a CRLF may be in the next read: decide then
                chunk = chunk[:-1]
                self._cr_pending = True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not chunk:
            return []
        parts = self._parts
        if parts:
            if b"\n\n" not in chunk and not (chunk[0] == 10 and parts[-1][-1] == 10):
                parts.append(chunk)  # still inside the same event
                self._pending += len(chunk)
                return []
            parts.append(chunk)
            buf = b"".join(parts)
        else:
            buf = chunk
        if b"\n\n" not in buf:
            self._parts = [buf]
            self._pending = len(buf)
            return []
        blocks = buf.split(b"\n\n")
        rest = blocks.pop()
        self._parts = [rest] if rest else []
        self._pending = len(rest)
        out: list[bytes] = []
        for block in blocks:
            payload = _payload(block)
            if payload is not None:
                out.append(payload)
        return out

    def flush(self) -> list[bytes]:
        """At end of stream: an event not closed by a blank line is dispatched anyway.

        The SSE spec drops such an event; servers that forget the final blank line are
        common enough that we keep it (the request is still classified as truncated when
        no ``[DONE]`` came).
        """
        rest = b"".join(self._parts)
        self._parts = []
        self._pending = 0
        payload = _payload(rest.strip(b"\n")) if rest.strip() else None
        return [] if payload is None else [payload]

    @property
    def pending_bytes(self) -> int:
        """Bytes held for the event not yet ended by a blank line."""
        return self._pending


def _payload(block: bytes) -> bytes | None:
    """The data of one event block, or None for a block with no data (comments only)."""
    if block.startswith(b"data:") and b"\n" not in block:  # the common case, one line
        return block[5:].strip()
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if name == b"data":
            data.append(value[1:] if value.startswith(b" ") else value)
    if not data:
        return None
    return b"\n".join(data).strip()
