"""What the stack sampler (``--collect stacks``) costs the Python process it observes.

    .venv/bin/python benchmarks/stacks_overhead.py --reps 5 \
        --out benchmarks/results/stacks-overhead-DATE.json

A target process runs a CPU-bound Python loop (``busy_decode_step``: pure-Python arithmetic,
or with ``--workload torch`` 20 tiny CUDA kernels and a synchronize, launch-bound like a small
model's decode) in one thread beside ``--idle-threads`` threads that wait (as an engine's
do), and counts loop iterations over a ``--seconds`` window. Three modes, ``--reps`` times
each, the order rotated every rep so slow drift spreads over all modes:

- ``none``: no sampler;
- ``nonblocking``: the real :class:`collectors.stacks.collector.StackCollector` in its own
  child (:class:`collectors.child.ChildRunner`), default rate, ``py-spy record
  --nonblocking`` (servescope's default);
- ``blocking``: the same with ``blocking`` (py-spy stops every thread at each sample).

The window opens once py-spy has been sampling for ``--warmup`` s. Per run: iterations/s of
the loop (wall clock: what the engine delivers), iterations per CPU-second of the loop's
thread (immune to other load on the host; a thread stopped by ptrace uses no CPU, so this
shows cache and memory-read effects only), the loop's CPU share of the window (``loop
CPU``: below 100 % when the host is busy or py-spy stops the thread), and py-spy's own CPU
seconds over the window (``/proc/PID/stat`` of the ``py-spy record`` process). Writes JSON
(every run, the medians, min–max spread and the median slowdown vs ``none``) and prints a
table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET = r"""
import sys, threading, time
if sys.argv[2] == "torch":  # a launch-bound loop: one tiny CUDA kernel per step
    import torch
    x = torch.zeros(1, device="cuda")
    def busy_decode_step(n):
        for _ in range(n // 100):
            x.add_(1)
        torch.cuda.synchronize()
else:  # pure-Python arithmetic
    def busy_decode_step(n):
        s = 0
        for i in range(n):
            s += i * i
        return s
busy_decode_step(2000)
for _ in range(int(sys.argv[1])):
    threading.Thread(target=threading.Event().wait, daemon=True).start()
print("ready", flush=True)
seconds = float(sys.stdin.readline())
count, c0, t_end = 0, time.thread_time(), time.monotonic() + seconds
while time.monotonic() < t_end:
    busy_decode_step(2000)
    count += 1
print(count / seconds, count / (time.thread_time() - c0), flush=True)
"""
_TICK = os.sysconf("SC_CLK_TCK")


def _pyspy_cpu_s(target: int) -> float:
    """CPU seconds of the ``py-spy record`` process sampling ``target``."""
    total = 0.0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            argv = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
            if b"record" not in argv or str(target).encode() not in argv:
                continue
            rest = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(rest[11]) + int(rest[12])) / _TICK
    return total


def one_run(mode: str, seconds: float, warmup_s: float, idle_threads: int,  # noqa: PLR0917
            rate_hz: int, workload: str) -> dict[str, Any]:
    from collectors.base import CollectContext, EngineFacts
    from collectors.child import ChildRunner
    from collectors.stacks.collector import StackCollector
    from servescope.clock import take_anchor

    proc = subprocess.Popen([sys.executable, "-c", TARGET, str(idle_threads), workload],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdout.readline()
    runner = None
    with TemporaryDirectory() as tmp:
        try:
            if mode != "none":
                ctx = CollectContext(Path(tmp), "http://127.0.0.1:1",
                                     EngineFacts("openai", pid=proc.pid), take_anchor(),
                                     options={"stacks": {"rate_hz": rate_hz,
                                                         "blocking": mode == "blocking",
                                                         "hang_after_s": 1e9}})
                runner = ChildRunner(StackCollector(), ctx)
                if not runner.start():
                    raise RuntimeError(runner.error)
            time.sleep(warmup_s)
            cpu0 = _pyspy_cpu_s(proc.pid)
            proc.stdin.write(f"{seconds}\n")
            proc.stdin.flush()
            rate, per_cpu = map(float, proc.stdout.readline().split())
            cpu = _pyspy_cpu_s(proc.pid) - cpu0
            samples = runner.stop().counts.get("samples", 0) if runner else 0
        finally:
            proc.kill()
            proc.wait()
    return {"mode": mode, "iterations_per_s": rate, "iterations_per_cpu_s": round(per_cpu, 1),
            "loop_cpu_frac": round(rate / per_cpu, 4), "pyspy_cpu_s": round(cpu, 3),
            "pyspy_cpu_frac": round(cpu / seconds, 4), "samples": samples}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    by: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by.setdefault(r["mode"], []).append(r)
    base = statistics.median(r["iterations_per_s"] for r in by.get("none", runs))
    out = {}
    for mode, rs in by.items():
        its = [r["iterations_per_s"] for r in rs]
        med = statistics.median(its)
        out[mode] = {"n": len(rs), "iterations_per_s_median": round(med, 1),
                     "min": round(min(its), 1), "max": round(max(its), 1),
                     "spread_frac": round((max(its) - min(its)) / med, 4),
                     "slowdown_frac": round(1 - med / base, 4),
                     "iterations_per_cpu_s_median": statistics.median(
                         r["iterations_per_cpu_s"] for r in rs),
                     "loop_cpu_frac_median": statistics.median(r["loop_cpu_frac"] for r in rs),
                     "pyspy_cpu_frac_median": statistics.median(r["pyspy_cpu_frac"]
                                                                for r in rs)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--idle-threads", type=int, default=8)
    ap.add_argument("--rate", type=int, default=50)
    ap.add_argument("--modes", default="none,nonblocking,blocking")
    ap.add_argument("--workload", choices=("python", "torch"), default="python",
                    help="torch: 20 tiny CUDA kernels per step instead of Python arithmetic")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    modes = a.modes.split(",")
    runs = []
    for rep in range(a.reps):
        order = modes[rep % len(modes):] + modes[:rep % len(modes)]
        for mode in order:
            r = one_run(mode, a.seconds, a.warmup, a.idle_threads, a.rate, a.workload)
            r["rep"] = rep
            runs.append(r)
            print(json.dumps(r), flush=True)
    summary = summarize(runs)
    print(f"\n{'mode':<12} {'it/s median':>12} {'min':>10} {'max':>10} {'slowdown':>9} "
          f"{'it/CPU-s':>10} {'loop CPU':>9} {'py-spy CPU':>10}")
    for mode, s in summary.items():
        print(f"{mode:<12} {s['iterations_per_s_median']:>12.1f} {s['min']:>10.1f} "
              f"{s['max']:>10.1f} {s['slowdown_frac']:>8.1%} "
              f"{s['iterations_per_cpu_s_median']:>10.1f} {s['loop_cpu_frac_median']:>8.1%} "
              f"{s['pyspy_cpu_frac_median']:>10.1%}")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"settings": vars(a) | {"out": str(a.out)},
                                     "date": time.strftime("%Y-%m-%d"),
                                     "cpus": os.cpu_count(), "python": sys.version.split()[0],
                                     "runs": runs, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
