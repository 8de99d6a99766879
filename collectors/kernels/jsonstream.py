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

Given an :class:`ArrowParse` (an explicit arrow schema of the fields wanted), pieces are
instead parsed by arrow's JSON reader into tables, several at once on worker threads (the
reader runs without the GIL), and only where that fails does a piece go the orjson way. Such
a piece is cut only at a ``}``, separator, ``{`` whose separator holds a raw newline (JSON
strings cannot, so the cut is outside every string), and the separator's comma is removed
wherever that exact separator recurs in the piece (again outside strings). Arrow accepting
the piece then proves the cut and every removed comma lay between two top-level events: one
inside an event leaves a bracket open or a list without its comma, which the reader rejects.
A piece arrow rejects (a cut inside an event, another layout, a value of an unexpected type
such as kineto's ``"pid": "Spans"``) and every piece after it in flight is read again from
its start the orjson way, so the result never depends on which way a piece went.

A file cut short (a killed export, a torn gzip member) yields the whole events before the
cut and sets :attr:`TraceStream.truncated` with a warning.
"""

from __future__ import annotations

import os
import re
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ArrowParse", "TraceFormatError", "TraceStream"]

_EVENTS_KEY = re.compile(rb'"traceEvents"\s*:\s*\[')
_CUT = re.compile(rb"\}\s*(?:,\s*\{|\])")
_WS_OR_COMMA = b" \t\r\n,"
_SEP = re.compile(rb"\}\s*,\s*\{")
_LAST = re.compile(rb"\}\s*\]")
_MAX_FAST_FAILURES = 8  # consecutive arrow rejections before a file is read the orjson way


@dataclass(frozen=True)
class ArrowParse:
    """Parse pieces with arrow's JSON reader into ``schema`` (other fields ignored)."""

    schema: pa.Schema
    readable: Callable[[bytes], bool] | None = None  # False: read this piece's text as dicts
    accepts: Callable[[pa.Table], bool] | None = None  # False: read this table's as dicts
    prepare: Callable[[pa.Table], Any] | None = None  # run on the table in the worker
    workers: int = 0  # threads (0: the machine's CPUs, at most 4)
    # a piece is this many times the stream's batch_bytes: per-piece costs (a few dozen
    # arrow calls) shrink with larger pieces (sorting a piece into the tables: 0.87 µs an
    # event at 1 MB, 0.57 at 4 MB), the memory they take in flight grows (200 k events,
    # workers + 1 in flight: 2 MB pieces 115-125 MB above the imports, 4 MB 150-180 MB;
    # 1 M events in the same 2.7-3.7 s either way on 2 CPUs)
    piece_batches: int = 2


def _arrow_piece(piece: bytes, sep: bytes, parse: ArrowParse) -> Any:
    """One piece of whole events (``sep`` the separator it was cut at) as a table (what
    ``parse.prepare`` makes of it when given); None where arrow rejects it."""
    import pyarrow as pa
    import pyarrow.json as pj

    if parse.readable is not None and not parse.readable(piece):
        return None
    text = piece.replace(b"}" + sep + b"{", b"}\n{")
    try:
        table = pj.read_json(
            pa.BufferReader(text),
            read_options=pj.ReadOptions(use_threads=False, block_size=len(text) + 1024),
            parse_options=pj.ParseOptions(explicit_schema=parse.schema,
                                          unexpected_field_behavior="ignore",
                                          newlines_in_values=True))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    if parse.accepts is not None and not parse.accepts(table):
        return None
    return table if parse.prepare is None else parse.prepare(table)


def _inner_sep(piece: bytes) -> bytes:
    """The separator of the first cut in ``piece`` (``b""`` where it has none: one event, or
    a layout arrow is not given)."""
    m = _boundary(piece, 0, len(piece))
    return b"" if m is None else m.group()[1:-1]


def _boundary(buf: bytes, start: int, limit: int) -> re.Match[bytes] | None:
    """The first ``}``, separator, ``{`` in ``buf[start:limit]`` whose separator holds a
    newline (so the cut is outside every string)."""
    for m in _SEP.finditer(buf, start, limit):
        if b"\n" in m.group():
            return m
    return None


def _reversed_cuts(buf: bytes, pos: int, target: int) -> Iterator[int]:
    yield from reversed([m.start() + 1 for m in _CUT.finditer(buf, pos, target)])


@dataclass
class _Cuts:
    sep: bytes | None = None  # the separator of the last cut
    last_tried: bool = False  # the last piece (up to the array's end) was cut


class TraceFormatError(ValueError):
    """A file that is not a Chrome trace (one-line message)."""


class TraceStream:
    """Reads one trace file: iterate it for batches of event dicts; ``header`` (every top-level
    key but ``traceEvents``) is complete once iteration ends (keys after the array included)."""

    def __init__(self, path: Path, *, batch_bytes: int = 1 << 20,
                 chunk_bytes: int = 4 << 20, arrow: ArrowParse | None = None) -> None:
        self.path = path
        self.batch_bytes = batch_bytes
        self.chunk_bytes = chunk_bytes
        self.arrow = arrow
        self.arrow_pieces = 0  # pieces arrow read (the rest went the orjson way)
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

    def __iter__(self) -> Iterator[list[dict[str, Any]] | Any]:
        try:
            f = open(self.path, "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise TraceFormatError(f"{self.path}: cannot open ({exc.strerror or exc})") from None
        with f:
            gz = f.read(2) == b"\x1f\x8b"
            f.seek(0)
            chunks = self._chunks(f, gz)
            buf, start = self._find_events(chunks)
            if self.arrow is None:
                yield from self._events(chunks, buf, start)
                return
            workers = self.arrow.workers or min(4, os.cpu_count() or 1)
            with ThreadPoolExecutor(workers, thread_name_prefix="trace-json") as pool:
                yield from self._events(chunks, buf, start, pool, workers + 1)

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

    def _events(self, chunks: Iterator[bytes], buf: bytes, pos: int,
                pool: ThreadPoolExecutor | None = None, in_flight: int = 0
                ) -> Iterator[list[dict[str, Any]] | Any]:
        eof = False
        arrow = self.arrow
        flight: deque[tuple[bytes, bytes, Future[Any]]] = deque()
        failures = 0
        slow_batches = 0  # orjson batches still to read before arrow is tried again
        size = self.batch_bytes * (arrow.piece_batches if arrow is not None else 1)
        cuts = _Cuts()
        while True:
            while pos < len(buf) and buf[pos] in _WS_OR_COMMA:
                pos += 1
            cut_at = None
            if (pool is not None and arrow is not None and failures < _MAX_FAST_FAILURES
                    and not slow_batches):
                if not eof and len(buf) - pos < 2 * size:
                    nxt = next(chunks, None)
                    if nxt is None:
                        eof = True
                    else:
                        buf = buf[pos:] + nxt
                        pos = 0
                    continue
                cut_at = self._piece(buf, pos, size, eof, cuts)
                if cut_at is not None:
                    piece, after, inner, pos = cut_at
                    flight.append((piece, after, pool.submit(_arrow_piece, piece, inner, arrow)))
            if flight:  # tables in order (all of them when no piece was cut: orjson is next)
                tables, buf, pos, failed = self._take(flight, buf, pos,
                                                      until=in_flight if cut_at and cut_at[1]
                                                      else 0)
                yield from tables
                failures = failures + 1 if failed else 0 if tables else failures
                slow_batches = 1 if failed else slow_batches
                continue
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
                slow_batches = max(0, slow_batches - 1)
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

    @staticmethod
    def _piece(buf: bytes, pos: int, size: int, eof: bool, cuts: _Cuts
               ) -> tuple[bytes, bytes, bytes, int] | None:
        """The next piece for arrow from ``pos``: (piece, the separator after it, the one
        within it, where the next starts); None when there is none to cut yet."""
        m = _boundary(buf, pos + size, pos + 2 * size)
        if m is not None:
            cuts.sep = buf[m.start() + 1:m.end() - 1]
            return buf[pos:m.start() + 1], cuts.sep, cuts.sep, m.end() - 1
        if eof and not cuts.last_tried and (end := _LAST.search(buf, pos)) is not None:
            # the rest up to the "]" that (if arrow takes the piece) closes the array
            cuts.last_tried = True
            piece = buf[pos:end.start() + 1]
            inner = cuts.sep if cuts.sep is not None else _inner_sep(piece)
            return piece, b"", inner, end.start() + 1
        return None

    def _take(self, flight: deque[tuple[bytes, bytes, Future[Any]]], buf: bytes,
              pos: int, *, until: int) -> tuple[list[Any], bytes, int, bool]:
        """The tables of the pieces in flight, in order, while more than ``until`` are in
        flight or the first is done; at a piece arrow rejected, the text from it on and True."""
        out: list[Any] = []
        while flight and (len(flight) > until or flight[0][2].done()):
            table = flight[0][2].result()
            if table is None:
                buf, pos = self._rewind(flight, buf, pos)
                return out, buf, pos, True
            flight.popleft()
            self.arrow_pieces += 1
            out.append(table)
        return out, buf, pos, False

    @staticmethod
    def _rewind(flight: deque[tuple[bytes, bytes, Future[Any]]], buf: bytes,
                pos: int) -> tuple[bytes, int]:
        """The text from the first piece in flight on (the pieces after it dropped)."""
        text = b"".join(piece + sep for piece, sep, _ in flight) + buf[pos:]
        for _, _, fut in flight:
            fut.cancel()
        flight.clear()
        return text, 0

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
