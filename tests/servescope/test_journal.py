"""The one journal writer and the one journal reader (servescope.rundir.journal).

A failed write is made real with RLIMIT_FSIZE: the kernel writes up to the limit (a short
write, the line cut in two) and refuses the rest with EFBIG, as a disk that fills up does."""

from __future__ import annotations

import errno
import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from servescope.rundir.journal import JournalWriter, read_journal, read_line_at


@contextmanager
def file_size_limit(nbytes: int) -> Iterator[None]:
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else: killed, core dumped
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, old_handler)


def _line(i: int) -> bytes:
    return orjson.dumps({"i": i, "pad": "x" * 40})


def test_lines_are_written_whole_and_read_back_with_their_place(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "j.jsonl"
    with JournalWriter(path) as w:
        assert all(w.write(_line(i)) for i in range(3))
        assert w.write(_line(3) + b"\n")  # a newline already there is not doubled
    assert (w.written, w.lost, w.error) == (4, 0, None)
    data = path.read_bytes()
    assert data == b"".join(_line(i) + b"\n" for i in range(4))
    warnings: list[str] = []
    entries = list(read_journal(path, warnings))
    assert warnings == []
    assert [e.value["i"] for e in entries] == [0, 1, 2, 3]
    assert [e.line for e in entries] == [1, 2, 3, 4]
    size = len(_line(0)) + 1
    assert [(e.offset, e.length) for e in entries] == [(k * size, size) for k in range(4)]
    with path.open("rb") as fh:
        assert read_line_at(fh, entries[2].offset, entries[2].length) == {"i": 2, "pad": "x" * 40}


def test_a_second_writer_appends(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    for i in range(2):
        with JournalWriter(path) as w:
            w.write(_line(i))
    assert [e.value["i"] for e in read_journal(path, [])] == [0, 1]


def test_torn_and_unreadable_lines_are_skipped_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "worker-3.jsonl"
    path.write_bytes(_line(0) + b"\n\n" + b"\xff\xfe\n" + _line(1) + b"\n" + b'{"i": 2, "pa')
    warnings: list[str] = []
    got = [(e.line, e.value["i"]) for e in read_journal(path, warnings)]
    assert got == [(1, 0), (4, 1)]  # the blank line 2 is passed over silently
    assert warnings == ["worker-3.jsonl:3: incomplete or unreadable journal line skipped",
                        "worker-3.jsonl:5: incomplete or unreadable journal line skipped"]
    custom: list[str] = []
    list(read_journal(path, custom, lambda name, n: f"{name}@{n}"))
    assert custom == ["worker-3.jsonl@3", "worker-3.jsonl@5"]


def test_a_failed_write_leaves_no_torn_line_and_stops(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    size = len(_line(0)) + 1
    w = JournalWriter(path)
    with file_size_limit(2 * size + size // 2):  # room for two lines and half of a third
        results = [w.write(_line(i)) for i in range(5)]
    assert results == [True, True, False, False, False]
    assert w.error is not None
    assert w.error.errno == errno.EFBIG
    assert (w.written, w.lost) == (2, 3)
    assert w.write(_line(9)) is False  # stop_on_error: nothing more, even with room again
    w.close()
    assert path.read_bytes() == _line(0) + b"\n" + _line(1) + b"\n"  # the half line is gone
    warnings: list[str] = []
    assert [e.value["i"] for e in read_journal(path, warnings)] == [0, 1]
    assert warnings == []


def test_without_stop_on_error_the_next_line_is_tried(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    size = len(_line(0)) + 1
    w = JournalWriter(path, stop_on_error=False)
    with file_size_limit(size + size // 2):
        assert [w.write(_line(i)) for i in range(3)] == [True, False, False]
    assert w.write(_line(3)) is True  # room again: written after the last whole line
    w.close()
    assert (w.written, w.lost) == (2, 2)
    assert [e.value["i"] for e in read_journal(path, [])] == [0, 3]


def test_a_closed_writer_never_raises(tmp_path: Path) -> None:
    w = JournalWriter(tmp_path / "j.jsonl")
    w.close()
    assert w.closed
    assert w.write(_line(0)) is False
    assert w.error is not None
    assert w.error.errno == errno.EBADF


def test_opening_where_no_file_can_be_is_an_oserror(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError):  # noqa: PT011 - NotADirectoryError or FileExistsError
        JournalWriter(tmp_path / "file" / "j.jsonl")
