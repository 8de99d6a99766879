"""The client's timing error against an independent paced server, kernel vs user-space stamps.

    flock /tmp/bench.lock .venv/bin/python benchmarks/kernel_stamps.py --streams 64 \
        --requests 512 [--burst] [--zero-cost --events 256] [--tokenizer DIR] \
        --out benchmarks/results/kernel-stamps-64.json

Starts ``benchmarks/paced_server.py`` (its own process, its own truth), runs servescope's
client in this process (one process, closed loop, one warm-up request per stream excluded),
and compares, request by request (matched by ``x-request-id``):

- TTFT error = (first output event's time − ``t_send_ns``) − (the first event's wire time at
  the server − the kernel's receive time of the request at the server);
- ITL error = each gap between consecutive output events minus the gap between the two
  events' wire times;

where an event's wire time is the server kernel's transmit stamp of the packet that carried
its end (``t_ev_wire_ns``; the ``send`` call's time where none came). ``server_held_back``
counts events whose bytes left more than 1 ms after the server's ``send`` returned (TCP
autocorking on a busy machine): against the send-call times those would count as client
error though no client could see them earlier.

once with the kernel receive times the client recorded (``ev_t_ns``) and once with its
user-space socket-read times (``ev_t_ns + ev_lag_ns``), plus the client-lag percentiles and,
with a tokenizer, the per-token ITL the analyzer reports. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__: list[str] = []

_ROOT = Path(__file__).resolve().parents[1]


def _pct(values: list[float]) -> dict[str, float]:
    import numpy as np

    a = np.abs(np.asarray(values, dtype=np.float64)) / 1e6
    if not a.size:
        return {}
    return {"n": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 4),
            "p99_ms": round(float(np.percentile(a, 99)), 4), "max_ms": round(float(a.max()), 4)}


def _compare(run_dir: Path, truth_path: Path) -> dict[str, Any]:
    import numpy as np

    from servescope.rundir.reader import load_run

    truth = {d["x_request_id"]: d for d in map(json.loads, truth_path.read_text().splitlines())}
    run = load_run(run_dir)
    req, ev = run.requests, run.events
    ev = ev[ev["kind"] == 0]  # output events
    by_rid: dict[int, Any] = {int(rid): g  # type: ignore[arg-type]
                              for rid, g in ev.groupby("request_id")}
    out: dict[str, Any] = {}
    for name, lag in (("kernel", False), ("user", True)):
        ttft: list[float] = []
        itl: list[float] = []
        for row in req.itertuples():
            if row.phase != "measure" or row.outcome != "success":
                continue
            tr = truth.get(str(row.x_request_id))
            g = by_rid.get(int(row.request_id))  # type: ignore[arg-type]
            if tr is None or g is None or len(g) != len(tr["t_ev_ns"]):
                continue
            t = g["t_ns"].to_numpy(np.int64)
            if lag:
                lags = g["lag_ns"].to_numpy(np.int64)
                t = t + np.where(lags >= 0, lags, 0)
            wire = np.asarray(tr.get("t_ev_wire_ns") or tr["t_ev_ns"], dtype=np.int64)
            s = np.where(wire >= 0, wire, np.asarray(tr["t_ev_ns"], dtype=np.int64))
            ttft.append(float((t[0] - row.t_send_ns) - (s[0] - tr["t_req_ns"])))
            itl.extend((np.diff(t) - np.diff(s)).astype(np.float64).tolist())
        out[name] = {"ttft_error": _pct(ttft), "itl_error": _pct(itl)}
    held = [w - a for d in truth.values() for w, a in
            zip(d.get("t_ev_wire_ns") or [], d["t_ev_after_ns"], strict=False) if w >= 0]
    out["server_held_back"] = {"events": len(held),
                               "over_1ms": int(sum(h > 1_000_000 for h in held))}
    lags = ev["lag_ns"].to_numpy(np.int64)
    lags = lags[lags >= 0]
    out["client_lag"] = _pct(lags.astype(np.float64).tolist())
    m = req[(req["phase"] == "measure") & (req["outcome"] == "success")]
    out["requests"] = len(m)
    out["ev_clock"] = sorted(set(m["ev_clock"]))
    first = ev.groupby("request_id")["t_ns"].min()
    ttft_rep = (first.reindex(m["request_id"]).to_numpy() - m["t_send_ns"].to_numpy()) / 1e6
    out["reported_ttft_ms"] = {"p50": round(float(np.nanmedian(ttft_rep)), 4),
                               "p99": round(float(np.nanpercentile(ttft_rep, 99)), 4)}
    if (m["tokens_cum_source"] == "client_tokenizer").any():
        from analyzers.itl import itl_samples

        its = itl_samples(run)
        out["per_token_itl_ms"] = {"median": round(float(np.median(its.per_token_ns)) / 1e6, 4),
                                   "mean": round(float(np.mean(its.per_token_ns)) / 1e6, 4),
                                   "source": sorted(set(its.per_request["itl_tokens_source"]))}
        out["client_vs_usage_tokens"] = int(
            (m["client_completion_tokens"] != m["usage_completion_tokens"]).sum())
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--streams", type=int, default=64)
    p.add_argument("--requests", type=int, default=512)
    p.add_argument("--events", type=int, default=64)
    p.add_argument("--ttft-ms", type=float, default=50.0)
    p.add_argument("--itl-ms", type=float, default=10.0)
    p.add_argument("--tokens-per-event", type=int, default=1)
    p.add_argument("--burst", action="store_true")
    p.add_argument("--zero-cost", action="store_true")
    p.add_argument("--tokenizer")
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    sys.path.insert(0, str(_ROOT))
    from collectors.client.target import Target
    from profiler.loadrun import LoadConfig, run_load
    from profiler.workloads.spec import ArrivalSpec, DatasetSpec, LengthDist

    work = Path(tempfile.mkdtemp(prefix="kstamps-"))
    truth = work / "truth.jsonl"
    cmd = [sys.executable, str(_ROOT / "benchmarks" / "paced_server.py"), "--truth", str(truth),
           "--ttft-ms", str(a.ttft_ms), "--itl-ms", str(a.itl_ms), "--events", str(a.events),
           "--tokens-per-event", str(a.tokens_per_event)]
    cmd += ["--burst"] * a.burst + ["--zero-cost"] * a.zero_cost
    srv = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout is not None
        port = int(srv.stdout.readline())
        cfg = LoadConfig(
            target=Target(base_url=f"http://127.0.0.1:{port}", model="paced",
                          per_chunk_usage=False, tokenizer=a.tokenizer),
            dataset=DatasetSpec("synthetic", input_len=LengthDist.fixed(16),
                                output_len=LengthDist.fixed(a.events)),
            arrival=ArrivalSpec("closed", concurrency=a.streams), out_dir=work / "run",
            num_requests=a.requests, duration_s=None, workers=1, warmup_requests=a.streams)
        t0 = time.time()
        cpu0 = os.times()
        run_load(cfg)
        cpu1 = os.times()
        wall = time.time() - t0
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(30)
    res = {"streams": a.streams, "requests": a.requests, "events": a.events,
           "burst": a.burst, "zero_cost": a.zero_cost, "tokens_per_event": a.tokens_per_event,
           "wall_s": round(wall, 2),
           "client_cpu_s": round(cpu1.user + cpu1.system - cpu0.user - cpu0.system, 2),
           "loadavg_before": os.getloadavg()[0], **_compare(work / "run", truth)}
    text = json.dumps(res, indent=1)
    print(text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
