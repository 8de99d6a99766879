"""Size and browser render time of the HTML report of a 10,000-request run.

Builds a run directory through the real writers (the client's journal writer and
``finalize_tables``; the engine's scrape journal and ``finalize_engine_tables``): an open
loop of Poisson arrivals at ``--rate`` req/s, lognormal TTFT and per-token ITL, one request
in a hundred failing with an HTTP error, and a vLLM ``/metrics`` page scraped every second
(KV usage, running, waiting, preemptions). Then renders its report, records the size in
bytes and the time headless Chromium (Debian's, driven by Playwright) takes from navigation
to every plot drawn (``window.servescopeRendered``), over ``--loads`` page loads.

    python -m benchmarks.report_size [--requests 10000] [--tokens 64] [--loads 5]
                                     [--out DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from collectors.engine_metrics import ScrapeOutcome, ScrapeResult, parse_body
from collectors.timeline import TimelineRecorder
from servescope.clock import take_anchor
from servescope.records import EventKind, Outcome, RequestRecord
from servescope.rundir.engine_tables import METRICS_JOURNAL, engine_dir, finalize_engine_tables
from servescope.rundir.manifest import EngineInfo, Manifest, host_fingerprint, write_manifest
from servescope.rundir.tables import finalize_tables

__all__ = ["build_large_run", "main", "measure_render"]

CHROMIUM = os.environ.get("SERVESCOPE_CHROMIUM", "/usr/bin/chromium")
_MS = 1_000_000


def _vllm_page(kv: float, running: int, waiting: int, preempted: int) -> bytes:
    return (
        "# TYPE vllm:kv_cache_usage_perc gauge\n"
        f"vllm:kv_cache_usage_perc {kv}\n"
        "# TYPE vllm:num_requests_running gauge\n"
        f"vllm:num_requests_running {running}\n"
        "# TYPE vllm:num_requests_waiting gauge\n"
        f"vllm:num_requests_waiting {waiting}\n"
        "# TYPE vllm:num_preemptions_total counter\n"
        f"vllm:num_preemptions_total {preempted}\n"
    ).encode()


def _records(t0: int, n: int, tokens: int, rate: float, seed: int) -> list[RequestRecord]:
    rng = np.random.default_rng(seed)
    sends = t0 + np.cumsum(rng.exponential(1e9 / rate, n)).astype(np.int64)
    ttft = (rng.lognormal(np.log(80.0), 0.5, n) * _MS).astype(np.int64)
    out = []
    for i in range(n):
        send = int(sends[i])
        if i % 100 == 99:
            out.append(RequestRecord(
                request_id=i, t_start_ns=send, t_send_ns=send, t_end_ns=send + 2 * _MS,
                t_intended_ns=send, status=400, outcome=Outcome.HTTP_ERROR.value,
                error="HTTP 400: This model's maximum context length is 1024 tokens.",
                max_tokens=tokens, prompt_tokens_planned=256))
            continue
        gaps = (rng.lognormal(np.log(12.0), 0.4, tokens - 1) * _MS).astype(np.int64)
        ev_t = (send + ttft[i] + np.concatenate([[0], np.cumsum(gaps)])).tolist()
        rec = RequestRecord(
            request_id=i, t_start_ns=send, t_send_ns=send, t_intended_ns=send,
            t_headers_ns=int(send + ttft[i] // 2), t_done_ns=ev_t[-1] + _MS,
            t_end_ns=ev_t[-1] + _MS, status=200, outcome=Outcome.SUCCESS.value,
            finish_reason="length", usage_prompt_tokens=256, usage_completion_tokens=tokens,
            output_chars=4 * tokens, max_tokens=tokens,
            prompt_tokens_planned=256)
        rec.ev_t_ns = [*ev_t, ev_t[-1] + _MS]
        rec.ev_kind = [int(EventKind.OUTPUT)] * tokens + [int(EventKind.DONE)]
        rec.ev_chars = [4] * tokens + [0]
        rec.ev_tokens_cum = [*range(1, tokens + 1), -1]
        out.append(rec)
    return out


def _scrapes(run_dir: Path, recs: list[RequestRecord]) -> None:
    sends = np.array([r.t_send_ns for r in recs])
    ends = np.array([r.t_end_ns for r in recs])
    edir = engine_dir(run_dir)
    edir.mkdir()
    preempted = 0
    with (edir / METRICS_JOURNAL).open("wb") as fh:
        for t in range(int(sends.min()) - 10**9, int(ends.max()) + 2 * 10**9, 10**9):
            running = int(((sends <= t) & (ends > t)).sum())
            waiting = max(0, running - 48)
            preempted += int(waiting > 4)
            body = _vllm_page(min(1.0, running / 60), min(running, 48), waiting, preempted)
            samples, entries = parse_body("prometheus", body)
            fh.write(ScrapeResult("http://127.0.0.1:8000/metrics", "prometheus", "",
                                  t - 5 * _MS, t - 5 * _MS, t, True, 200, ScrapeOutcome.OK,
                                  "", len(body), 0, entries, tuple(samples)).journal_line())
    finalize_engine_tables(run_dir)


def build_large_run(root: Path, n_requests: int = 10_000, *, tokens: int = 64,
                    rate: float = 40.0, seed: int = 0, engine: bool = True) -> Path:
    """Write a run directory of ``n_requests`` (see the module doc) under ``root``."""
    run_dir = root / f"large-{n_requests}"
    run_dir.mkdir(parents=True)
    anchor = take_anchor()
    arrival = {"kind": "poisson", "rate_per_s": rate, "concurrency": None, "burstiness": 1.0}
    manifest = Manifest(
        run_id=run_dir.name, started_wall_ns=anchor.wall_ns, clock=anchor,
        host=host_fingerprint(), command_line=["benchmarks.report_size"],
        workload={"arrival": arrival, "steps": [arrival], "num_requests": n_requests,
                  "dataset": {"kind": "synthetic", "input_len": {"kind": "fixed", "mean": 256},
                              "output_len": {"kind": "fixed", "mean": tokens}}},
        seed=seed, target={"model": "synthetic", "endpoint": "completions", "stream": True,
                           "per_chunk_usage": True},
        status="complete", engine=EngineInfo(name="vllm") if engine else None)
    write_manifest(run_dir, manifest)
    recs = _records(anchor.mono_ns, n_requests, tokens, rate, seed)
    with TimelineRecorder(run_dir, worker_id=0) as rec:
        for r in recs:
            rec.write(r)
    finalize_tables(run_dir)
    if engine:
        _scrapes(run_dir, recs)
    return run_dir


def measure_render(report: Path, loads: int = 3, screenshot: Path | None = None,
                   timeout_s: float = 60.0) -> dict[str, Any]:
    """Load ``report`` in headless Chromium ``loads`` times: milliseconds from navigation to
    every plot drawn, plotly.js unpacked and evaluated, console errors."""
    from playwright.sync_api import sync_playwright

    times, plotly_ms, errors = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for i in range(loads):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.on("console", lambda m: errors.append(m.text) if m.type == "error"
                        else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(report.resolve().as_uri())
                page.wait_for_function("window.servescopeRendered || window.servescopeError",
                                       timeout=timeout_s * 1000)
                err = page.evaluate("window.servescopeError || null")
                if err:
                    errors.append(err)
                times.append(float(page.evaluate("window.servescopeRendered")))
                plotly_ms.append(float(page.evaluate("window.servescopeTimes.plotly")))
                if screenshot is not None and i == 0:
                    page.screenshot(path=str(screenshot), full_page=True)
                page.close()
        finally:
            browser.close()
    return {"render_ms": times, "render_ms_median": statistics.median(times),
            "plotly_ready_ms_median": statistics.median(plotly_ms), "errors": errors}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="keep the run and report here")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    from profiler.commands_report import write_run_report

    root = args.out or Path(tempfile.mkdtemp(prefix="report-size-"))
    t = time.perf_counter()
    run_dir = build_large_run(root, args.requests, tokens=args.tokens)
    built_s = time.perf_counter() - t
    t = time.perf_counter()
    report = write_run_report(run_dir)
    render_s = time.perf_counter() - t
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.node()} "
        f"({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})",
        "requests": args.requests, "tokens_per_request": args.tokens,
        "run_dir_bytes": sum(f.stat().st_size for f in run_dir.rglob("*") if f.is_file()),
        "report_bytes": report.stat().st_size, "build_run_s": round(built_s, 2),
        "write_report_s": round(render_s, 2),
        **measure_render(report, args.loads, screenshot=root / "report.png"),
    }
    print(json.dumps(result, indent=1))
    if args.json is not None:
        from servescope.jsonio import write_json

        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
