"""Dumps when the engine stops streaming: "it hangs" evidence.

:class:`HangWatcher` reads the load's activity (:class:`collectors.base.ActivityBoard`) at
each check. When requests have been in flight with no chunk arriving for ``hang_after_s``,
it takes a ``py-spy dump --native`` of every engine process (again without ``--native`` for
those that fail) into ``stacks/hang-<n>/<role>-<pid>.txt`` and appends a
:class:`~servescope.records.stacks.HangDump` to ``stacks/hangs.json``: once per stall
episode; the watcher re-arms when a chunk arrives again or no request is in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from collectors.base import ActivityBoard
from collectors.stacks.pyspy import DUMP_TIMEOUT_S, dump_all
from servescope.jsonio import dumps
from servescope.records.stacks import HangDump
from servescope.rundir.atomic import atomic_write
from servescope.rundir.layout import HANGS_FILE, STACKS_DIR, RunDirError

__all__ = ["HangWatcher"]


class HangWatcher:
    """Call :meth:`check` every fraction of a second; ``targets()`` gives the engine's
    processes to dump as ``(pid, role)``."""

    def __init__(self, board: ActivityBoard, run_dir: Path, py_spy: str, hang_after_s: float,
                 targets: Callable[[], Sequence[tuple[int, str]]], *,
                 dump_timeout_s: float = DUMP_TIMEOUT_S) -> None:
        self.board, self.run_dir, self.py_spy = board, Path(run_dir), py_spy
        self.hang_after_s = hang_after_s
        self.targets = targets
        self.dump_timeout_s = dump_timeout_s
        self.hangs: list[HangDump] = []
        self.write_error = ""
        self._armed = True

    def check(self, now_ns: int) -> HangDump | None:
        """Dump every process if a stall just reached ``hang_after_s`` (once per episode);
        the dump taken, or None."""
        activity = self.board.read()
        stalled_s = activity.stalled_s(now_ns)
        if stalled_s < self.hang_after_s:
            self._armed = True  # a chunk came, or nothing is in flight: a new episode may
            return None
        if not self._armed:
            return None
        self._armed = False
        return self._dump(now_ns, stalled_s, activity.in_flight)

    def _dump(self, now_ns: int, stalled_s: float, in_flight: int) -> HangDump:
        n = len(self.hangs) + 1
        folder = f"{STACKS_DIR}/hang-{n}"
        targets = list(self.targets())
        names = {pid: f"{folder}/{role}-{pid}.txt" for pid, role in targets}
        results = dump_all(self.py_spy, [(pid, self.run_dir / names[pid]) for pid, _ in targets],
                           self.dump_timeout_s)
        files = tuple(names[r.pid] for r in results if r.file is not None)
        roles = dict(targets)
        errors = tuple(f"{roles[r.pid]}-{r.pid}: {r.error}" for r in results if r.error)
        if not targets:
            errors = ("no engine process to dump",)
        hang = HangDump(now_ns, round(stalled_s, 3), in_flight, files, errors)
        self.hangs.append(hang)
        self._write()
        return hang

    def _write(self) -> None:
        try:
            atomic_write(self.run_dir / HANGS_FILE, dumps(self.hangs, indent=True))
        except RunDirError as exc:
            self.write_error = str(exc)

    def summary(self) -> str:
        """One sentence for the run's warnings ("" when nothing stalled)."""
        if not self.hangs:
            return ""
        first = self.hangs[0]
        text = (f"the engine stopped streaming {len(self.hangs)} time(s) (first: no chunk for "
                f"{first.stalled_s:.0f} s with {first.in_flight} requests in flight); ")
        dumped = [k for k, h in enumerate(self.hangs, 1) if h.files]
        if dumped:
            where = ", ".join(f"{STACKS_DIR}/hang-{k}/" for k in dumped)
            text += f"py-spy dumps of the engine's processes are in {where} ({HANGS_FILE})"
        else:
            error = next((e for h in self.hangs for e in h.errors), "")
            text += f"py-spy could not dump the engine's processes ({HANGS_FILE}): {error}"
        if self.write_error:
            text += f"; {HANGS_FILE} not written: {self.write_error}"
        return text
