"""Client scale-out: servescope's ingestion ceiling with 1, 2, 4, 8 worker processes.

The reference server runs as several processes sharing one port (``--reuse-port``) on their
own cores, so it outruns the client; the client runs pinned to the remaining cores. Each
cell: a closed loop at ``--concurrency`` streams for ``--requests`` requests of
``--output-tokens`` tokens, 1 token per event. Measured: events/s and requests/s over the
run's window (first send to last end, from the run directory) and the client's CPU per
event (rusage of the waited-for client process tree). Needs a machine with enough cores
(``taskset``); results as JSON and Markdown.

    python benchmarks/client_scaling.py --out DIR [--server-procs 6] [--workers 1,2,4,8]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cores(spec: str) -> list[str]:
    return ["taskset", "-c", spec] if spec else []


def start_servers(
    n: int, port: int, cores: str, events_per_write: int
) -> list[subprocess.Popen[bytes]]:
    procs = []
    for _ in range(n):
        argv = [
            *_cores(cores),
            sys.executable,
            "-m",
            "profiler.selftest.serve",
            "--port",
            str(port),
            "--reuse-port",
            "--no-truth",
            "--ttft-ms",
            "0",
            "--itl-ms",
            "0",
            "--output-tokens",
            "4096",
            "--events-per-write",
            str(events_per_write),
            "--model",
            "ref",
        ]
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(3)
    return procs


def cell(
    url: str,
    out: Path,
    *,
    workers: int,
    concurrency: int,
    requests: int,
    output_tokens: int,
    cores: str,
) -> dict[str, Any]:
    argv = [
        *_cores(cores),
        sys.executable,
        "-m",
        "profiler.cli",
        "attach",
        "--url",
        url,
        "--model",
        "ref",
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--concurrency",
        str(concurrency),
        "--requests",
        str(requests),
        "--input-len",
        "fixed:16",
        "--output-len",
        f"fixed:{output_tokens}",
        "--no-metrics",
    ]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, check=False)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    req = pq.read_table(out / "requests.parquet").to_pandas()
    ok = req[req["outcome"] == "success"]
    window = (ok["t_end_ns"].max() - ok["t_send_ns"].min()) / 1e9
    events = int(ok["n_events"].sum())
    return {
        "workers": workers,
        "concurrency": concurrency,
        "requests": len(ok),
        "errors": len(req) - len(ok),
        "window_s": window,
        "outer_wall_s": wall,
        "events": events,
        "events_per_s": events / window,
        "requests_per_s": len(ok) / window,
        "client_cpu_s": cpu,
        "client_cpu_us_per_event": cpu / events * 1e6,
        "exit": proc.returncode,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--server-procs", type=int, default=6)
    ap.add_argument("--workers", default="1,2,4,8")
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--output-tokens", type=int, default=256)
    ap.add_argument("--events-per-write", type=int, default=1)
    a = ap.parse_args()
    n = os.cpu_count() or 2
    srv_cores = f"0-{a.server_procs - 1}" if n > a.server_procs + 1 else ""
    cli_cores = f"{a.server_procs}-{n - 1}" if srv_cores else ""
    port = _free_port()
    servers = start_servers(a.server_procs, port, srv_cores, a.events_per_write)
    a.out.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for w in (int(x) for x in a.workers.split(",")):
            rows.append(
                cell(
                    f"http://127.0.0.1:{port}",
                    a.out / f"run-w{w}",
                    workers=w,
                    concurrency=a.concurrency,
                    requests=a.requests,
                    output_tokens=a.output_tokens,
                    cores=cli_cores,
                )
            )
            print(json.dumps(rows[-1]), flush=True)
    finally:
        for p in servers:
            p.terminate()
    meta = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpus": n,
        "cpu_model": next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            "?",
        ),
        "server_procs": a.server_procs,
        "server_cores": srv_cores,
        "client_cores": cli_cores,
        "events_per_write": a.events_per_write,
    }
    (a.out / "scaling.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        f"servescope client scale-out, {meta['date']}, {n} CPUs ({meta['cpu_model']}); "
        f"server: {a.server_procs} processes on cores {srv_cores or 'any'}, client on "
        f"{cli_cores or 'any'}; {a.concurrency} streams, {a.output_tokens} tokens/request, "
        f"{a.events_per_write} event(s)/write",
        "",
        "| workers | events/s | requests/s | client CPU µs/event | errors |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['workers']} | {r['events_per_s']:,.0f} | {r['requests_per_s']:,.0f} | "
        f"{r['client_cpu_us_per_event']:.1f} | {r['errors']} |"
        for r in rows
    ]
    (a.out / "scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
