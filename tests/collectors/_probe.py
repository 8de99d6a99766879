"""A test-only collector: small, importable by a spawned child (module level), with knobs
for each way a collector can fail. It is never registered outside the tests that use it."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from collectors.base import CollectContext, CollectorStats, CollectorUnavailable
from servescope.redact import redact_text


@dataclass
class Probe:
    """Appends one line to ``RUN/probe.txt`` every ``tick_s`` (its option) until stopped."""

    name: str = "probe"
    label: str = "probe collector"
    fail_start: bool = False
    hang_stop_s: float = 0.0  # stop() takes this long
    ignore_term: bool = False  # the child shrugs SIGTERM off (the runner must kill it)
    unavailable: str = ""  # validate_environment() raises with this text
    skip: str = ""
    bound_s: float = 5.0

    def __post_init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ticks = 0

    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_thread", "_stop")}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._thread, self._stop = None, threading.Event()

    def validate_environment(self) -> None:
        if self.unavailable:
            raise CollectorUnavailable(self.unavailable)

    def skip_reason(self, ctx: CollectContext) -> str:
        return self.skip

    def stop_bound_s(self, ctx: CollectContext) -> float:
        if float(ctx.options_for(self.name).get("tick_s", 0.05)) <= 0:
            raise ValueError("tick_s must be positive")
        return self.bound_s

    def start(self, ctx: CollectContext) -> None:
        if self.fail_start:
            raise RuntimeError(f"no device for key {ctx.secrets[0] if ctx.secrets else ''}")
        if self.ignore_term:
            import signal

            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        tick_s = float(ctx.options_for(self.name).get("tick_s", 0.05))
        path = ctx.run_dir / "probe.txt"
        secret_line = redact_text(f"pid {os.getpid()} key {ctx.headers.get('X-Key', '')}")

        def loop() -> None:
            with path.open("a") as fh:
                while not self._stop.wait(tick_s):
                    fh.write(secret_line + "\n")
                    fh.flush()
                    self._ticks += 1

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> CollectorStats:
        if self._thread is None:
            return CollectorStats({"ticks": 0})
        self._stop.set()
        self._thread.join()
        time.sleep(self.hang_stop_s)
        return CollectorStats({"ticks": self._ticks},
                              "ticks were slow" if self._ticks < 2 else "")
