"""Client timeline collector: appends each finished request to the run's journal.

One line per request through :class:`servescope.rundir.journal.JournalWriter` (one ``write``
system call on an ``O_APPEND`` descriptor), so a request is on disk (in the page cache) as soon
as it ends: a crash, Ctrl-C or SIGKILL of the client loses only requests still in flight.
:func:`servescope.rundir.tables.finalize_tables` turns journals into parquet at the end of the
run.

A failed write (a full disk) never raises into the run: the journal keeps no part of the line,
the recorder remembers the error (:attr:`TimelineRecorder.error`), writes nothing more and
counts the records it could not write (:attr:`TimelineRecorder.lost`). :func:`write` returns
False from then on; the driver stops the run when it sees that.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from servescope.records import RequestRecord
from servescope.rundir.journal import JournalWriter
from servescope.rundir.layout import journal_path

__all__ = ["TimelineRecorder"]


class TimelineRecorder:
    """Append-only writer of :class:`RequestRecord` lines for one worker process."""

    def __init__(self, run_dir: Path, worker_id: int) -> None:
        self._journal = JournalWriter(journal_path(run_dir, worker_id))
        self.path = self._journal.path

    @property
    def written(self) -> int:
        return self._journal.written

    @property
    def lost(self) -> int:
        """Records not written because a write had failed."""
        return self._journal.lost

    @property
    def error(self) -> OSError | None:
        return self._journal.error

    def write(self, record: RequestRecord) -> bool:
        """Append ``record``; False (and nothing written) once a write has failed."""
        return self._journal.write(orjson.dumps(record) + b"\n")

    def close(self) -> None:
        self._journal.close()

    def __enter__(self) -> TimelineRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
