"""Client timeline collector: appends each finished request to the run's journal.

One ``write`` system call per request on an ``O_APPEND`` descriptor, so a request is on disk
(in the page cache) as soon as it ends: a crash, Ctrl-C or SIGKILL of the client loses only
requests still in flight. :func:`profiler.rundir.tables.finalize_tables` turns journals into
parquet at the end of the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from profiler.records import RequestRecord
from profiler.rundir.layout import journal_path

__all__ = ["TimelineRecorder"]


class TimelineRecorder:
    """Append-only writer of :class:`RequestRecord` lines for one worker process."""

    def __init__(self, run_dir: Path, worker_id: int) -> None:
        path = journal_path(run_dir, worker_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.written = 0

    def write(self, record: RequestRecord) -> None:
        os.write(self._fd, orjson.dumps(record) + b"\n")
        self.written += 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> TimelineRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
