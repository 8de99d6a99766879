"""A tiny engine-like Python process whose stacks the tests know.

``python fake_engine.py engine``: threads ``generation_loop`` (always busy in
``busy_decode_step``), ``light_worker`` (busy ~10 % of the time in ``light_tokenize``) and
``batch_waiter`` (always waiting in ``wait_for_batch``); a non-Python child (``sleep``) at
once, and a Python child ``fake_engine.py worker`` after ``WORKER_DELAY_S`` (engines start
workers lazily). Prints ``ready`` once its threads run.
``python fake_engine.py worker booting…``: a process that waits, and sets its title to
``fake::Worker`` after ``TITLE_DELAY_S`` (as an engine's worker does after its imports, the way
``setproctitle`` does: over its argv in memory).
"""

import subprocess
import sys
import threading
import time

WORKER_DELAY_S = 1.0
TITLE_DELAY_S = 3.5
BOOTING = "booting" + "." * 40  # room for the new title


def set_title(title: str) -> None:
    """Overwrite this process's argv in memory (fields 48-49 of /proc/self/stat: where it
    lies), as setproctitle does: /proc/PID/cmdline then reads ``title``."""
    with open("/proc/self/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    start, end = int(fields[45]), int(fields[46])
    with open("/proc/self/mem", "r+b") as mem:
        mem.seek(start)
        mem.write(title.encode()[:end - start - 1].ljust(end - start, b"\0"))


def busy_decode_step(n: int) -> int:
    s = 0
    for i in range(n):
        s += i * i
    return s


def generation_loop() -> None:
    while True:
        busy_decode_step(20_000)


def light_tokenize() -> None:
    t_end = time.monotonic() + 0.01
    while time.monotonic() < t_end:
        pass


def light_worker() -> None:
    while True:
        light_tokenize()
        time.sleep(0.09)


def wait_for_batch(ev: threading.Event) -> None:
    ev.wait()


def main() -> None:
    if sys.argv[1] == "worker":
        time.sleep(TITLE_DELAY_S)
        set_title("fake::Worker")
        threading.Event().wait()
        return
    sleeper = subprocess.Popen(["sleep", "600"])
    for target, name, args in ((generation_loop, "generation_loop", ()),
                               (light_worker, "light_worker", ()),
                               (wait_for_batch, "batch_waiter", (threading.Event(),))):
        threading.Thread(target=target, name=name, args=args, daemon=True).start()
    print("ready", sleeper.pid, flush=True)
    time.sleep(WORKER_DELAY_S)
    worker = subprocess.Popen([sys.executable, __file__, "worker", BOOTING])
    print("worker", worker.pid, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
