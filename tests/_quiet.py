"""Is the machine oversubscribed while a timing measurement runs? (Linux /proc/stat)"""

from __future__ import annotations

import os
import threading


class RunQueueSampler:
    """Fraction of 2 ms samples in which more tasks were runnable than there are CPUs
    (the sampler's own thread not counted). A client's timing error on a 2-core machine is
    only its own when nothing else competes for the cores."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self.samples = 0
        self.over = 0
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        cpus = os.cpu_count() or 1
        while not self._stop.wait(0.002):
            try:
                with open("/proc/stat", encoding="ascii") as f:
                    running = next(int(ln.split()[1]) for ln in f
                                   if ln.startswith("procs_running"))
            except (OSError, StopIteration, ValueError):
                return
            self.samples += 1
            self.over += running - 1 > cpus

    def __enter__(self) -> RunQueueSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def fraction(self) -> float:
        return self.over / self.samples if self.samples else 0.0
