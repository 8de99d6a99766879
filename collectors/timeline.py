"""Client timeline collector: appends each finished request to the run's journal.

One ``write`` system call per request on an ``O_APPEND`` descriptor, so a request is on disk
(in the page cache) as soon as it ends: a crash, Ctrl-C or SIGKILL of the client loses only
requests still in flight. :func:`servescope.rundir.tables.finalize_tables` turns journals into
parquet at the end of the run.

A failed write (a full disk) never raises into the run: the recorder removes whatever part
of the line reached the file, remembers the error (:attr:`TimelineRecorder.error`), writes
nothing more and counts the records it could not write (:attr:`TimelineRecorder.lost`).
:func:`write` returns False from then on; the driver stops the run when it sees that.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

import orjson

from servescope.records import RequestRecord
from servescope.rundir.layout import journal_path

__all__ = ["TimelineRecorder"]


class TimelineRecorder:
    """Append-only writer of :class:`RequestRecord` lines for one worker process."""

    def __init__(self, run_dir: Path, worker_id: int) -> None:
        path = journal_path(run_dir, worker_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._end = os.fstat(self._fd).st_size  # just after the last whole line
        self.written = 0
        self.lost = 0  # records not written because a write had failed
        self.error: OSError | None = None

    def write(self, record: RequestRecord) -> bool:
        """Append ``record``; False (and nothing written) once a write has failed."""
        if self.error is not None:
            self.lost += 1
            return False
        line = orjson.dumps(record) + b"\n"
        try:
            if self._fd < 0:
                raise OSError(errno.EBADF, "journal already closed", str(self.path))
            done = os.write(self._fd, line)
            while done < len(line):  # a short write (the disk filled up mid-line)
                done += os.write(self._fd, line[done:])
        except OSError as exc:
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

    def __enter__(self) -> TimelineRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
