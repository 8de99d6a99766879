"""``servescope selftest``: the client's own timing error and ingestion ceiling, measured
against the loopback reference server on this machine."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzers.truth_compare import TruthComparison, compare_with_truth
from collectors.client.target import Target
from profiler.loadrun import LoadConfig, run_load
from profiler.selftest.process import start_refserver
from profiler.selftest.schedule import RefSchedule
from profiler.workloads.spec import ArrivalSpec, DatasetSpec, LengthDist
from servescope.jsonio import write_json
from servescope.rundir.reader import load_run

__all__ = ["CeilingResult", "SelftestResult", "measure_accuracy", "measure_ceiling",
           "run_selftest", "spread_lengths"]

REF_MODEL = "refserver"


@dataclass(frozen=True, slots=True)
class CeilingResult:
    concurrency: int
    workers: int
    duration_s: float
    requests: int
    events: int
    requests_per_s: float
    events_per_s: float
    client_cpu_s: float
    client_cpu_us_per_event: float
    errors: int


@dataclass(frozen=True, slots=True)
class SelftestResult:
    accuracy: TruthComparison
    ceiling: CeilingResult | None
    out_dir: Path


def _config(url: str, out: Path, *, concurrency: int, requests: int | None,
            duration_s: float | None, output_len: LengthDist, workers: int,
            warmup_requests: int = 0) -> LoadConfig:
    return LoadConfig(
        target=Target(base_url=url, model=REF_MODEL, endpoint="completions"),
        dataset=DatasetSpec("synthetic", input_len=LengthDist.fixed(16), output_len=output_len),
        arrival=ArrivalSpec("closed", concurrency=concurrency),
        out_dir=out, num_requests=requests, duration_s=duration_s, workers=workers,
        warmup_requests=warmup_requests,
    )


def spread_lengths(output_tokens: int) -> LengthDist:
    """Output lengths uniform in [n/2, 3n/2]: streams that started together do not all end
    together (identical lengths make every stream finish in the same millisecond, a burst
    no real batch of requests produces every time)."""
    lo = max(1, output_tokens // 2)
    return LengthDist.uniform(lo, max(lo, output_tokens * 3 // 2))


def measure_accuracy(out: Path, *, concurrency: int, requests: int, schedule: RefSchedule,
                     workers: int = 1, server_args: tuple[str, ...] = (),
                     output_len: LengthDist | None = None,
                     warmup_requests: int | None = None) -> TruthComparison:
    """Run ``requests`` at ``concurrency`` against a truth-recording server and compare.

    By default one warm-up request per stream is excluded: the first requests open their
    connections in one burst, which measures connection set-up, not streaming."""
    with start_refserver(schedule, extra_args=server_args) as server:
        cfg = _config(server.url, out, concurrency=concurrency, requests=requests,
                      duration_s=None, workers=workers,
                      output_len=output_len or LengthDist.fixed(schedule.output_tokens),
                      warmup_requests=concurrency if warmup_requests is None
                      else warmup_requests)
        run_load(cfg)
        truth = server.truth()
    write_json(out / "selftest_truth.json", truth, indent=False)
    return compare_with_truth(load_run(out), truth)


def measure_ceiling(out: Path, *, concurrency: int, duration_s: float, workers: int = 1,
                    output_tokens: int = 256) -> CeilingResult:
    """Closed loop at ``concurrency`` against a server that answers as fast as it can."""
    sched = RefSchedule(ttft_ms=0, itl_ms=0, output_tokens=output_tokens)
    with start_refserver(sched, extra_args=["--no-truth"]) as server:
        cfg = _config(server.url, out, concurrency=concurrency, requests=None,
                      duration_s=duration_s, output_len=LengthDist.fixed(output_tokens),
                      workers=workers)
        cpu0 = _cpu_s(workers)
        run_load(cfg)
        cpu = _cpu_s(workers) - cpu0
    run = load_run(out)
    req = run.requests
    ok = req[req["outcome"] == "success"]
    window_s = (ok["t_end_ns"].max() - ok["t_send_ns"].min()) / 1e9 if len(ok) else 0.0
    events = int(ok["n_events"].sum())
    return CeilingResult(
        concurrency=concurrency, workers=workers, duration_s=window_s, requests=len(ok),
        events=events, requests_per_s=len(ok) / window_s if window_s else 0.0,
        events_per_s=events / window_s if window_s else 0.0, client_cpu_s=cpu,
        client_cpu_us_per_event=cpu / events * 1e6 if events else float("nan"),
        errors=len(req) - len(ok),
    )


def _cpu_s(workers: int) -> float:
    """CPU seconds of the client: this process, or its finished worker processes."""
    who = resource.RUSAGE_SELF if workers == 1 else resource.RUSAGE_CHILDREN
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


def run_selftest(out: Path, *, concurrency: int = 64, requests: int = 256,
                 ttft_ms: float = 20.0, itl_ms: float = 5.0, output_tokens: int = 64,
                 tokens_per_event: int = 1, ceiling_s: float = 5.0,
                 workers: int = 1) -> SelftestResult:
    out.mkdir(parents=True, exist_ok=True)
    sched = RefSchedule(ttft_ms=ttft_ms, itl_ms=itl_ms, output_tokens=output_tokens * 2,
                        tokens_per_event=tokens_per_event)
    # the server does not busy-wait for its deadlines (--spin-us 0): the truth is what it
    # actually did either way, and a spinning server would take a core from the client
    acc = measure_accuracy(out / "accuracy", concurrency=concurrency, requests=requests,
                           schedule=sched, workers=workers, server_args=("--spin-us", "0"),
                           output_len=spread_lengths(output_tokens))
    ceiling = None
    if ceiling_s > 0:
        ceiling = measure_ceiling(out / "ceiling", concurrency=concurrency,
                                  duration_s=ceiling_s, workers=workers)
    result = SelftestResult(acc, ceiling, out)
    write_json(out / "selftest.json", _jsonable(result))
    return result


def _jsonable(r: SelftestResult) -> dict[str, Any]:
    """``selftest.json``: when, the accuracy (error statistics in ns) and the ceiling."""
    return {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "accuracy": r.accuracy,
            "ceiling": r.ceiling}
