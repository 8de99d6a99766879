"""Whole-or-nothing writes of run-directory files: every writer of a manifest or a table
goes through :func:`staged` (or :func:`atomic_write`), so a reader never sees half a file
and a failed write (a full disk) leaves no stray temporary file behind."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from servescope.rundir.layout import RunDirError

__all__ = ["RunDirWriteError", "atomic_write", "is_disk_full", "staged", "write_problem"]

_FULL = (errno.ENOSPC, errno.EDQUOT)


class RunDirWriteError(RunDirError):
    """A run-directory file could not be written; ``path`` and ``errno`` say which and why."""

    def __init__(self, path: Path, exc: OSError) -> None:
        super().__init__(write_problem(path, exc))
        self.path = path
        self.errno = exc.errno


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (an OSError or a :class:`RunDirWriteError`) is a full disk or quota."""
    return getattr(exc, "errno", None) in _FULL


def write_problem(path: Path, exc: OSError) -> str:
    """One line for a failed write: ``no space left on device writing PATH`` or
    ``cannot write PATH: REASON``."""
    if exc.errno in _FULL:
        return f"no space left on device writing {path}"
    return f"cannot write {path}: {exc.strerror or exc}"


@contextmanager
def staged(*paths: Path) -> Iterator[list[Path]]:
    """Temporary paths (``NAME.tmp`` beside each) to write; when the block ends they replace
    ``paths`` together. If the block raises, the temporary files are removed and an
    ``OSError`` becomes :class:`RunDirWriteError` (other exceptions propagate as they are)."""
    tmps = [p.with_name(p.name + ".tmp") for p in paths]
    try:
        yield tmps
        for tmp, path in zip(tmps, paths, strict=True):
            os.replace(tmp, path)
    except BaseException as exc:
        for tmp in tmps:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass  # nothing more can be done; the original error is the one to report
        if isinstance(exc, OSError):
            where = next((p for p, t in zip(paths, tmps, strict=True)
                          if exc.filename in (str(t), str(p))), paths[0])
            raise RunDirWriteError(where, exc) from exc
        raise


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (:class:`RunDirWriteError` if not)."""
    with staged(path) as (tmp,), tmp.open("wb") as fh:
        fh.write(data)
