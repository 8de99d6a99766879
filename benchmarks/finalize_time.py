"""Time and peak memory of turning journals into parquet tables (``finalize``).

Two journals, written through the real writers, each finalized in a fresh process:

- ``client``: a client journal of ``--events`` SSE events (default 2,000,000) in requests of
  ``--events-per-request`` events (default 200), written out of request-id order as
  concurrent requests end (shuffled in blocks of 64), finalized by
  :func:`servescope.rundir.tables.finalize_tables`;
- ``engine``: an engine journal of ``--pages`` raw pages (default 100) of the real vLLM CPU
  ``/metrics`` page (52 KB, ``tests/data/vllm_cpu/metrics_during_load.prom``), journaled unparsed
  as the scraper does, finalized by :func:`servescope.rundir.engine_tables.finalize_engine_tables`
  (which parses them).

Each case runs ``--repeat`` times; printed: wall seconds of the finalize call (min and
median), the process's peak RSS, journal and table bytes.

    python -m benchmarks.finalize_time [--events 2000000] [--pages 100] [--repeat 3]
                                       [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PAGE = Path(__file__).parents[1] / "tests" / "data" / "vllm_cpu" / "metrics_during_load.prom"
_MS = 1_000_000


def _client_journal(run_dir: Path, events: int, per_request: int, seed: int) -> None:
    from collectors.timeline import TimelineRecorder
    from servescope.records import EventKind, RequestRecord

    rng = random.Random(seed)
    n = max(1, events // per_request)
    ids = list(range(n))
    blocks = [ids[i:i + 64] for i in range(0, n, 64)]
    for block in blocks:
        rng.shuffle(block)
    t0 = 10**15
    kinds = [int(EventKind.ROLE)] + [int(EventKind.OUTPUT)] * (per_request - 3) + [
        int(EventKind.USAGE), int(EventKind.DONE)]
    with TimelineRecorder(run_dir, worker_id=0) as rec:
        for rid in (i for block in blocks for i in block):
            send = t0 + rid * 5 * _MS
            ev_t = [send + 30 * _MS + k * 7 * _MS + rng.randrange(1000)
                    for k in range(per_request)]
            r = RequestRecord(request_id=rid, endpoint="completions", x_request_id=f"r{rid}",
                              prompt_tokens_planned=256, max_tokens=per_request, t_start_ns=send,
                              t_send_ns=send, t_headers_ns=ev_t[0], t_done_ns=ev_t[-1],
                              t_end_ns=ev_t[-1] + 1000, status=200, finish_reason="length",
                              usage_prompt_tokens=256, usage_completion_tokens=per_request,
                              output_chars=4 * per_request)
            r.ev_t_ns = ev_t
            r.ev_kind = kinds
            r.ev_chars = [0] + [4] * (per_request - 3) + [0, 0]
            r.ev_tokens_cum = list(range(per_request))
            rec.write(r)


def _engine_journal(run_dir: Path, pages: int) -> None:
    from collectors.engine_scrape import ScrapeOutcome, ScrapeResult
    from servescope.rundir.engine_tables import METRICS_JOURNAL, engine_dir

    body = PAGE.read_bytes()
    edir = engine_dir(run_dir)
    edir.mkdir(parents=True)
    with (edir / METRICS_JOURNAL).open("wb") as fh:
        for k in range(pages):
            t = 10**15 + k * 10**9
            fh.write(ScrapeResult("http://127.0.0.1:8000/metrics", "prometheus", "", t, t,
                                  t + 3 * _MS, True, 200, ScrapeOutcome.OK, "", len(body), 0, 0,
                                  body=body).journal_line())


def _dir_bytes(path: Path, suffix: str) -> int:
    return sum(f.stat().st_size for f in path.rglob(f"*{suffix}") if f.is_file())


def measure_once(case: str, events: int, per_request: int, pages: int) -> dict[str, Any]:
    """Build the journal in a temporary run directory and time its finalize (this process)."""
    from servescope.rundir.engine_tables import finalize_engine_tables
    from servescope.rundir.tables import finalize_tables

    with tempfile.TemporaryDirectory(prefix="finalize-") as tmp:
        run_dir = Path(tmp)
        if case == "client":
            _client_journal(run_dir, events, per_request, seed=0)
        else:
            _engine_journal(run_dir, pages)
        journal = _dir_bytes(run_dir, ".jsonl")
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        n = (finalize_tables(run_dir) if case == "client" else finalize_engine_tables(run_dir))[0]
        seconds = time.perf_counter() - t
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"rows": n, "seconds": seconds, "peak_rss_mib": rss1 / 1024,
                "rss_before_mib": rss0 / 1024, "journal_bytes": journal,
                "table_bytes": _dir_bytes(run_dir, ".parquet")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--events-per-request", type=int, default=200)
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", default="client,engine")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child: one measurement
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(measure_once(args.one, args.events, args.events_per_request,
                                      args.pages)))
        return 0
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs, "
                   f"{platform.processor() or platform.machine()})",
        "load_avg": os.getloadavg(), "events": args.events,
        "events_per_request": args.events_per_request, "pages": args.pages,
    }
    for case in args.cases.split(","):
        runs = []
        for _ in range(args.repeat):
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.finalize_time", "--one", case,
                 "--events", str(args.events), "--events-per-request",
                 str(args.events_per_request), "--pages", str(args.pages)],
                capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        secs = [r["seconds"] for r in runs]
        result[case] = {"seconds_min": round(min(secs), 3),
                        "seconds_median": round(statistics.median(secs), 3),
                        "peak_rss_mib_max": round(max(r["peak_rss_mib"] for r in runs), 1),
                        "runs": runs}
        print(f"{case}: {result[case]['seconds_min']:.2f} s min, "
              f"{result[case]['seconds_median']:.2f} s median, peak RSS "
              f"{result[case]['peak_rss_mib_max']:.0f} MiB, rows {runs[0]['rows']}, journal "
              f"{runs[0]['journal_bytes'] / 2**20:.1f} MiB → tables "
              f"{runs[0]['table_bytes'] / 2**20:.1f} MiB", flush=True)
    if args.json is not None:
        from servescope.jsonio import write_json

        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
