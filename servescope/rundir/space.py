"""Room on the disk of a run directory: a reserve for the end of the run, and the journal
lines written during a step (to notice records a worker process could not write).

A run that fills its disk must still be able to say so: :class:`Reserve` holds
:data:`RESERVE_BYTES` in ``RUN/.reserve`` from the start of the run and gives them back just
before the final manifest (and, when there is room, the tables) are written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

from servescope.rundir.atomic import RunDirWriteError
from servescope.rundir.layout import RESERVE_FILE
from servescope.rundir.tables import journal_files

__all__ = ["RESERVE_BYTES", "Reserve", "journal_bytes", "journal_sizes", "lines_since",
           "room_for_tables"]

RESERVE_BYTES = 256 << 10  # a manifest is a few kB; a rewrite needs the old and the new


class Reserve:
    """``RUN/.reserve``, allocated on creation (:class:`RunDirWriteError` when the disk
    has not even that much room), removed by :meth:`release`."""

    def __init__(self, run_dir: Path, size: int = RESERVE_BYTES) -> None:
        self.path = run_dir / RESERVE_FILE
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                _allocate(fd, size)
            finally:
                os.close(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)
            raise RunDirWriteError(self.path, exc) from exc

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


def _allocate(fd: int, size: int) -> None:
    """Really take ``size`` bytes: fallocate where the filesystem has it, else write them
    (random bytes: a compressing filesystem would not store zeros)."""
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # not supported here
            raise
    view = memoryview(os.urandom(size))
    while view:
        view = view[os.write(fd, view):]


def journal_sizes(run_dir: Path) -> dict[Path, int]:
    """Size of each worker's journal now."""
    sizes: dict[Path, int] = {}
    for path in journal_files(run_dir):
        with contextlib.suppress(OSError):
            sizes[path] = path.stat().st_size
    return sizes


def journal_bytes(run_dir: Path) -> int:
    return sum(journal_sizes(run_dir).values())


def lines_since(before: dict[Path, int], run_dir: Path) -> int:
    """Journal lines appended since ``before`` (from :func:`journal_sizes`): only the new
    bytes are read."""
    n = 0
    for path, size in journal_sizes(run_dir).items():
        start = before.get(path, 0)
        if size <= start:
            continue
        with path.open("rb") as fh:
            fh.seek(start)
            while block := fh.read(1 << 20):
                n += block.count(b"\n")
    return n


def room_for_tables(run_dir: Path) -> bool:
    """Whether the disk has room to write the tables beside the journal (the journal stays
    until both tables are in place) and still leave a reserve."""
    try:
        free = shutil.disk_usage(run_dir).free
    except OSError:
        return False
    return free > 2 * journal_bytes(run_dir) + RESERVE_BYTES
