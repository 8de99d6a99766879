"""Sleeping until an absolute monotonic deadline, to within tens of microseconds.

``asyncio.sleep`` overshoots by up to ~1 ms (timers are rounded to epoll's millisecond
resolution), so :class:`DeadlineSleeper` sleeps with the event loop's timer until
``spin_ns`` before the deadline and then hands the waiter to one shared spinner task that
yields with ``sleep(0)`` until the deadline passes. One spinner serves every waiter of the
loop, so a thousand concurrent streams cost one busy task, not a thousand. Deadlines are
absolute (``t_recv + ttft + k * itl``), so a late event never delays the next one.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time

__all__ = ["DEFAULT_SPIN_NS", "DeadlineSleeper"]

DEFAULT_SPIN_NS = 1_500_000
_now_ns = time.monotonic_ns


class DeadlineSleeper:
    """Wakes coroutines at absolute ``time.monotonic_ns()`` deadlines.

    ``spin_ns`` is how long before a deadline the coarse timer hands over to the spinner;
    ``0`` disables spinning (plain ``asyncio.sleep``, ~1 ms late, no busy CPU).
    """

    def __init__(self, spin_ns: int = DEFAULT_SPIN_NS) -> None:
        if spin_ns < 0:
            raise ValueError(f"spin_ns must be >= 0, got {spin_ns}")
        self.spin_ns = spin_ns
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._spinner: asyncio.Task[None] | None = None

    async def sleep_until(self, deadline_ns: int) -> None:
        """Return at or just after ``deadline_ns``; immediately if it has passed."""
        remaining = deadline_ns - _now_ns()
        if remaining <= 0:
            return
        if self.spin_ns == 0:
            await asyncio.sleep(remaining / 1e9)
            return
        if remaining > self.spin_ns:
            await asyncio.sleep((remaining - self.spin_ns) / 1e9)
            if _now_ns() >= deadline_ns:
                return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (deadline_ns, next(self._seq), fut))
        if self._spinner is None or self._spinner.done():
            self._spinner = asyncio.create_task(self._spin())
        await fut

    async def _spin(self) -> None:
        heap = self._heap
        while heap:
            now = _now_ns()
            while heap and heap[0][0] <= now:
                fut = heapq.heappop(heap)[2]
                if not fut.done():
                    fut.set_result(None)
            await asyncio.sleep(0)
