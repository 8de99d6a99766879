"""The hang watcher's episodes against an ActivityBoard the test writes, with a py-spy that
fails (the dumps themselves are tested with the real one in test_collector.py)."""

from __future__ import annotations

from pathlib import Path

from collectors.base import ActivityBoard
from collectors.stacks.hangs import HangWatcher
from servescope.jsonio import loads
from servescope.rundir.layout import HANGS_FILE

S = 1_000_000_000


def _failing_py_spy(tmp_path: Path) -> str:
    fake = tmp_path / "py-spy"
    fake.write_text("#!/bin/sh\necho 'Error: Failed to find python version from target "
                    "process' >&2\nexit 1\n")
    fake.chmod(0o755)
    return str(fake)


def test_one_dump_per_stall_episode(tmp_path: Path) -> None:
    board = ActivityBoard()
    w = HangWatcher(board, tmp_path, _failing_py_spy(tmp_path), 30.0, lambda: [(4242, "worker")],
                    dump_timeout_s=5.0)
    t0 = 1000 * S
    assert w.check(t0) is None  # never written: nothing in flight
    board.write(t0, 8, 100)  # requests in flight, chunks arriving
    assert w.check(t0 + 29 * S) is None  # not long enough
    hang = w.check(t0 + 31 * S)
    assert hang is not None
    assert (hang.stalled_s, hang.in_flight, hang.files) == (31.0, 8, ())
    assert hang.errors == ("worker-4242: Error: Failed to find python version from target "
                           "process",)
    assert w.check(t0 + 60 * S) is None  # the same stall: dumped once
    board.write(t0 + 61 * S, 8, 101)  # a chunk: re-armed
    assert w.check(t0 + 62 * S) is None
    second = w.check(t0 + 92 * S)
    assert second is not None
    assert second.stalled_s == 31.0
    board.write(t0 + 93 * S, 0, 101)  # nothing in flight: no stall however long
    assert w.check(t0 + 500 * S) is None
    saved = loads((tmp_path / HANGS_FILE).read_bytes())
    assert [h["t_ns"] for h in saved] == [t0 + 31 * S, t0 + 92 * S]
    assert "could not dump the engine's processes" in w.summary()
    assert "stopped streaming 2 time(s) (first: no chunk for 31 s with 8 requests" in w.summary()
