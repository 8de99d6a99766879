"""Journals: append-only JSON-lines files written while a run goes on, and their reader.

:class:`JournalWriter` appends one line per ``write`` with one ``os.write`` on an ``O_APPEND``
descriptor, so a line is on disk (in the page cache) as soon as it is written: a crash, Ctrl-C
or SIGKILL of the writer loses only lines it had not written yet. A failed write (a full disk)
never raises: the writer cuts off whatever part of the line reached the file (no torn line is
left for a reader), remembers the error and counts the line as lost. With ``stop_on_error``
(the default) it then writes nothing more and counts every later line as lost.

:func:`read_journal` streams a journal back: each readable line as a :class:`JournalEntry`
(its decoded value, line number, byte offset and length, so a reader can index a journal and
come back to a line later), and a line cut short by a crash or otherwise unreadable as a
warning naming ``file:line``; it never raises for a bad line.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = ["JournalEntry", "JournalWriter", "read_journal", "read_line_at"]


class JournalWriter:
    """Appends lines (bytes, one JSON value each) to ``path``; ``write`` never raises.

    Opening creates the parent directory and the file (an ``OSError`` if it cannot).
    """

    def __init__(self, path: Path, *, stop_on_error: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._end = os.fstat(self._fd).st_size  # just after the last whole line
        self.stop_on_error = stop_on_error
        self.written = 0  # lines written
        self.lost = 0  # lines not written (a failed write, or any line after it)
        self.error: OSError | None = None  # the first failed write

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def write(self, line: bytes) -> bool:
        """Append ``line`` (a newline is added if it has none); False if it was not written."""
        if self.error is not None and self.stop_on_error:
            self.lost += 1
            return False
        if not line.endswith(b"\n"):
            line += b"\n"
        try:
            if self._fd < 0:
                raise OSError(errno.EBADF, "journal already closed", str(self.path))
            done = os.write(self._fd, line)
            while done < len(line):  # a short write (the disk filled up mid-line)
                done += os.write(self._fd, line[done:])
        except OSError as exc:
            if self.error is None:
                self.error = exc
            self.lost += 1
            if self._fd >= 0:  # no half line left for the next reader to trip on
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._end)
            return False
        self._end += len(line)
        self.written += 1
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One readable line: its decoded ``value``, 1-based ``line`` number, and where it is
    (``offset``, ``length`` in bytes, the newline included)."""

    value: Any
    line: int
    offset: int
    length: int


def _torn(name: str, n: int) -> str:
    return f"{name}:{n}: incomplete or unreadable journal line skipped"


def read_journal(path: Path, warnings: list[str],
                 torn: Callable[[str, int], str] = _torn) -> Iterator[JournalEntry]:
    """The readable lines of ``path`` in file order, streamed (one line in memory at a time).

    Blank lines are passed over; a line that is not valid JSON (cut short by a crash mid-write,
    or not UTF-8) is skipped and ``torn(file name, line number)`` appended to ``warnings``."""
    offset = 0
    with Path(path).open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            here, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                warnings.append(torn(Path(path).name, n))
                continue
            yield JournalEntry(value, n, here, len(raw))


def read_line_at(fh: Any, offset: int, length: int) -> Any:
    """The value of the line at ``offset`` (from a :class:`JournalEntry`) of the open binary
    file ``fh``; :class:`orjson.JSONDecodeError` if it no longer decodes."""
    fh.seek(offset)
    return orjson.loads(fh.read(length))
