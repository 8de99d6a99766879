"""The trace file: Chrome JSON trace events written one at a time, gzip when the name ends in
``.gz``, whole or not at all (:func:`servescope.rundir.atomic.staged`).

Times: every event's ``ts``/``dur`` is in microseconds (the Chrome trace format's unit) as a
float, ``(t_ns − origin_ns) / 1000``, where ``origin_ns`` is the earliest time of the run's
sources on its monotonic clock (``otherData.origin_mono_ns`` in the file). Counting from
the origin keeps the numbers small enough that the three decimals printed are the exact
nanoseconds (below 2**53 ns, ``n / 1000`` prints as the exact decimal); an absolute monotonic
time of a host that has been up for months would not.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from io import BufferedIOBase
from pathlib import Path
from typing import Any

import orjson

from servescope.rundir.atomic import staged

__all__ = ["TraceWriter", "trace_writer"]

_FLUSH_BYTES = 1 << 20


class TraceWriter:
    """Appends events to the ``traceEvents`` array, buffered about 1 MB at a time."""

    def __init__(self, fh: BufferedIOBase, origin_ns: int) -> None:
        self.origin_ns = origin_ns
        self.events = 0
        self._fh = fh
        self._buf: list[bytes] = []
        self._size = 0

    def us(self, t_ns: int) -> float:
        """A time of the run's clock as the trace's ``ts`` (µs after the origin)."""
        return (t_ns - self.origin_ns) / 1000

    def emit(self, event: dict[str, Any]) -> None:
        self.emit_bytes(orjson.dumps(event))

    def emit_bytes(self, data: bytes) -> None:
        if self.events:
            self._buf.append(b",\n")
        self._buf.append(data)
        self.events += 1
        self._size += len(data) + 2
        if self._size >= _FLUSH_BYTES:
            self.flush()

    def emit_array(self, data: bytes, n: int) -> None:
        """``n`` events given as one JSON array (``orjson.dumps(list)``)."""
        if n:
            self.emit_bytes(data[1:-1])
            self.events += n - 1

    def flush(self) -> None:
        if self._buf:
            self._fh.write(b"".join(self._buf))
            self._buf.clear()
            self._size = 0


@contextmanager
def trace_writer(path: Path, origin_ns: int, other: dict[str, Any]) -> Iterator[TraceWriter]:
    """``{"displayTimeUnit": "ns", "otherData": other, "traceEvents": [...]}`` streamed to
    ``path``; the file appears only when the block ends without an exception."""
    with staged(path) as (tmp,), tmp.open("wb") as raw:
        fh: BufferedIOBase = raw
        if path.name.endswith(".gz"):
            fh = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0)
        try:
            head = orjson.dumps({"displayTimeUnit": "ns", "otherData": other})
            fh.write(head[:-1] + b',"traceEvents":[\n')
            writer = TraceWriter(fh, origin_ns)
            yield writer
            writer.flush()
            fh.write(b"\n]}\n")
        finally:
            if fh is not raw:
                fh.close()
