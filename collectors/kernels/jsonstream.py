"""A Chrome-trace JSON file (gzip or plain) read once, in batches of parsed events.

A trace is one object ``{..., "traceEvents": [ev, ev, ...], ...}``. Parsing it whole (what
HolisticTraceAnalysis and TraceLens do) holds every event as a Python object; here the
decompressed text is read ``chunk_bytes`` at a time and the event array is cut into pieces of
about ``batch_bytes``, each parsed by orjson as ``[piece]``.

A cut is tried at each ``}`` followed by ``,``/``]`` then ``{`` (whitespace allowed); a piece
that starts at an event boundary and ends anywhere else (inside a string or a nested object)
leaves a string or bracket open, so orjson rejects it and the next candidate is tried. So
every accepted piece is a run of whole events whatever the layout (one event per line,
kineto's indented events, or no whitespace at all); the layout only changes the speed.

A file cut short (a killed export, a torn gzip member) yields the whole events before the
cut and sets :attr:`TraceStream.truncated` with a warning.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

__all__ = ["TraceFormatError", "TraceStream"]

_EVENTS_KEY = re.compile(rb'"traceEvents"\s*:\s*\[')
_CUT = re.compile(rb"\}\s*(?:,\s*\{|\])")
_WS_OR_COMMA = b" \t\r\n,"


def _reversed_cuts(buf: bytes, pos: int, target: int) -> Iterator[int]:
    yield from reversed([m.start() + 1 for m in _CUT.finditer(buf, pos, target)])


class TraceFormatError(ValueError):
    """A file that is not a Chrome trace (one-line message)."""


class TraceStream:
    """Reads one trace file: iterate it for batches of event dicts; ``header`` (every top-level
    key but ``traceEvents``) is complete once iteration ends (keys after the array included)."""

    def __init__(self, path: Path, *, batch_bytes: int = 1 << 20,
                 chunk_bytes: int = 4 << 20) -> None:
        self.path = path
        self.batch_bytes = batch_bytes
        self.chunk_bytes = chunk_bytes
        self.header: dict[str, Any] = {}
        self.truncated = False
        self.warnings: list[str] = []
        self.bytes_read = 0

    def _chunks(self, f: IO[bytes], gz: bool) -> Iterator[bytes]:
        """Decompressed text, about ``chunk_bytes`` at a time. gzip is inflated here with
        zlib (not :mod:`gzip`, whose ``read`` drops what it inflated when the stream ends
        early), member after member."""
        if not gz:
            while data := f.read(self.chunk_bytes):
                self.bytes_read += len(data)
                yield data
            return
        inflate = zlib.decompressobj(wbits=31)
        pending = b""  # compressed bytes not given to zlib yet
        while True:
            if not pending and not (pending := f.read(self.chunk_bytes // 4)):
                break
            try:
                data = inflate.decompress(pending, self.chunk_bytes)
            except zlib.error as exc:
                self._cut_short(f"compressed data corrupt ({exc})")
                return
            pending = inflate.unconsumed_tail
            if data:
                self.bytes_read += len(data)
                yield data
            if inflate.eof:  # the member ended: another may follow
                pending = inflate.unused_data + pending
                if not pending.strip(b"\x00") and not f.read(1):
                    return
                inflate = zlib.decompressobj(wbits=31)
        data = inflate.flush()
        if data:
            self.bytes_read += len(data)
            yield data
        self._cut_short("compressed stream ends early")

    def _cut_short(self, why: str) -> None:
        self.truncated = True
        self.warnings.append(f"{self.path.name}: {why} after {self.bytes_read} bytes")

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        try:
            f = open(self.path, "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise TraceFormatError(f"{self.path}: cannot open ({exc.strerror or exc})") from None
        with f:
            gz = f.read(2) == b"\x1f\x8b"
            f.seek(0)
            chunks = self._chunks(f, gz)
            buf, start = self._find_events(chunks)
            yield from self._events(chunks, buf, start)

    def _find_events(self, chunks: Iterator[bytes]) -> tuple[bytes, int]:
        buf = b""
        for data in chunks:
            buf += data
            m = _EVENTS_KEY.search(buf)
            if m is not None:
                self._merge_header(buf[:m.start()] + b'"traceEvents": []}', where="header")
                return buf, m.end()
            if len(buf) > 64 << 20:
                break
        raise TraceFormatError(f"{self.path}: no \"traceEvents\" array (not a Chrome trace, "
                               "or cut before its first event)")

    def _merge_header(self, text: bytes, *, where: str) -> None:
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.warnings.append(f"{self.path.name}: {where} metadata unreadable, ignored")
            return
        if isinstance(obj, dict):
            obj.pop("traceEvents", None)
            self.header.update(obj)

    def _events(self, chunks: Iterator[bytes], buf: bytes, pos: int
                ) -> Iterator[list[dict[str, Any]]]:
        eof = False
        while True:
            while pos < len(buf) and buf[pos] in _WS_OR_COMMA:
                pos += 1
            if buf[pos:pos + 1] == b"]":
                self._trailer(chunks, buf[pos + 1:])
                return
            cut = None
            if eof or len(buf) - pos >= self.batch_bytes:
                cut = self._cut(buf, pos, min(pos + self.batch_bytes, len(buf)))
            if cut is not None:
                end, events = cut
                yield events
                pos = end
                continue
            if eof:
                self._torn(buf, pos)
                return
            nxt = next(chunks, None)
            if nxt is None:
                eof = True
            else:
                buf = buf[pos:] + nxt
                pos = 0

    def _cut(self, buf: bytes, pos: int, target: int
             ) -> tuple[int, list[dict[str, Any]]] | None:
        """The first valid cut at or after ``target``, else the last valid one before it:
        the end offset and the events; None when no cut in the buffer is valid."""
        after = (m.start() + 1 for m in _CUT.finditer(buf, max(pos, target - 1)))
        for candidates in (after, _reversed_cuts(buf, pos, target)):
            for end in candidates:
                try:
                    events = orjson.loads(b"[" + buf[pos:end] + b"]")
                except orjson.JSONDecodeError:
                    continue
                # orjson makes exact dicts: one set of types, not a Python loop per event
                if not isinstance(events, list) or (events and set(map(type, events))
                                                    != {dict}):
                    raise TraceFormatError(f"{self.path}: traceEvents holds something other "
                                           "than objects")
                return end, events
        return None

    def _torn(self, buf: bytes, pos: int) -> None:
        self.truncated = True
        self.warnings.append(f"{self.path.name}: trace ends inside the event array "
                             f"({len(buf) - pos} bytes after the last whole event dropped)")

    def _trailer(self, chunks: Iterator[bytes], rest: bytes) -> None:
        for data in chunks:
            rest += data
            if len(rest) > 64 << 20:
                self.warnings.append(f"{self.path.name}: text after the event array too "
                                     "long, ignored")
                return
        text = rest.strip()
        if text.startswith(b","):
            self._merge_header(b"{" + text[1:], where="trailing")
        elif text != b"}":
            self.truncated = True
            self.warnings.append(f"{self.path.name}: trace ends after the event array "
                                 "without closing the object")
