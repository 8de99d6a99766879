"""The client's cost of ``--otlp-endpoint`` (the live export, profiler.otlp_tail): the same
attach against servescope's reference server with and without it, alternating, into an
OTLP/HTTP sink on loopback that answers 200.

Per run: the client process's CPU seconds (``time.process_time`` over the whole attach: the
load, the tables; the export children are not in it), the load's wall time and SSE events
per second (first send to last end, from the run's tables), and the export children's CPU
seconds (``RUSAGE_CHILDREN``: the live child and the end-of-run child).

    .venv/bin/python -m benchmarks.otlp_live_cost --requests 600 --concurrency 16 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def one(url: str, sink: str | None, out: Path, requests: int, conc: int) -> dict[str, Any]:
    import pandas as pd

    from profiler.cli_workload import WorkloadOptions
    from profiler.engine_run import EngineOptions, attach_engine

    opts = EngineOptions(engine="openai", collect="metrics", scrape=False, otlp_endpoint=sink)
    cfg = WorkloadOptions(requests=requests, concurrency=conc, input_len="fixed:8",
                          output_len="fixed:64").to_config(url, "ref", out, ["t"])
    cpu0, ch0 = time.process_time(), _children_cpu_s()
    res = attach_engine(url, opts, config=cfg)
    cpu, ch = time.process_time() - cpu0, _children_cpu_s() - ch0
    req = pd.read_parquet(out / "requests.parquet")
    n_ev = len(pd.read_parquet(out / "events.parquet"))
    wall = (req["t_end_ns"].max() - req["t_send_ns"].min()) / 1e9
    live = res.otlp_live or {}
    return {"live": sink is not None, "status": res.status, "client_cpu_s": round(cpu, 3),
            "load_wall_s": round(wall, 3), "events_per_s": round(n_ev / wall),
            "export_children_cpu_s": round(ch, 3), "live_spans": live.get("spans", 0),
            "live_batches": live.get("batches", 0),
            "warnings": [w for w in res.warnings if "OTLP" in w]}


def main() -> None:
    from profiler.selftest.process import start_refserver
    from profiler.selftest.schedule import RefSchedule

    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=600)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sink = f"http://127.0.0.1:{srv.server_address[1]}"
    rows = []
    sched = RefSchedule(ttft_ms=5, itl_ms=1, output_tokens=64)
    with start_refserver(sched, extra_args=["--spin-us", "0", "--model", "ref"]) as server, \
            tempfile.TemporaryDirectory() as tmp:
        for i in range(a.repeats):
            for live in (False, True):
                row = one(server.url, sink if live else None, Path(tmp) / f"r{i}{live}",
                          a.requests, a.concurrency)
                print(json.dumps(row), flush=True)
                rows.append(row)
    for live in (False, True):
        mine = [r for r in rows if r["live"] is live]
        cpu = statistics.median(r["client_cpu_s"] for r in mine)
        print(f"live={live}: client CPU median {cpu:.2f} s, "
              f"events/s median {statistics.median(r['events_per_s'] for r in mine):,.0f}, "
              f"export children CPU median "
              f"{statistics.median(r['export_children_cpu_s'] for r in mine):.2f} s")
    srv.shutdown()


if __name__ == "__main__":
    main()
