"""Standard output and error that survive their reader: after a hangup the terminal is gone
(a write raises EIO), and behind a pipe whose reader died (``| tee`` closed with the terminal)
a write raises EPIPE. Either must not turn a run that is stopping cleanly into a traceback,
nor make the interpreter's last flush fail: the stream is pointed at ``/dev/null`` from the
first failed write on, and the run goes on to record itself."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO, cast

__all__ = ["forgiving_std_streams"]

_GONE = {errno.EIO, errno.EPIPE, errno.ENXIO, errno.EBADF}


class _Forgiving(io.TextIOBase):
    """A text stream that delegates to ``inner`` until a write fails because nobody is
    listening any more; then the file descriptor is redirected to ``/dev/null``."""

    def __init__(self, inner: TextIO) -> None:
        super().__init__()
        self._inner = inner
        self._dropped = False

    def _drop(self) -> None:
        self._dropped = True
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            fd = self._inner.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)
        with contextlib.suppress(OSError, ValueError):
            self._inner.flush()  # what was buffered now goes to /dev/null

    def write(self, s: str) -> int:
        if self._dropped:
            return len(s)
        try:
            return self._inner.write(s)
        except OSError as exc:
            if exc.errno not in _GONE:
                raise
            self._drop()
            return len(s)

    def flush(self) -> None:
        if self._dropped:
            return
        try:
            self._inner.flush()
        except OSError as exc:
            if exc.errno not in _GONE:
                raise
            self._drop()

    def isatty(self) -> bool:
        return not self._dropped and self._inner.isatty()

    def fileno(self) -> int:
        return self._inner.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._inner.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self._inner.errors

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextlib.contextmanager
def forgiving_std_streams() -> Iterator[None]:
    """``sys.stdout`` and ``sys.stderr`` are forgiving for the block (restored after)."""
    out, err = sys.stdout, sys.stderr
    if out is not None:
        sys.stdout = cast(TextIO, _Forgiving(out))
    if err is not None:
        sys.stderr = cast(TextIO, _Forgiving(err))
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        sys.stdout, sys.stderr = out, err
