"""What each collector costs the engine it observes: the same closed-loop workload against one
running engine, with and without the collector, repeated and interleaved.

    python benchmarks/collector_arms.py --engine vllm --url http://127.0.0.1:8000 \\
        --arms none,gpu,stacks,gpu+stacks --reps 3 --duration 20 --concurrency 16 \\
        --out benchmarks/results/arms-vllm-cpu.json -- vllm serve MODEL --port 8000 ...

Starts the serving command ONCE (its own session, so ``--pid`` reaches every process of it),
waits for ``--ready-path``, warms it up with one discarded arm, then runs ``servescope attach
--pid PID --collect requests[,ARM]`` for every arm, ``--reps`` times, rotating the order each
rep so that slow drift spreads over all arms; every run gets its own seed. Engine metrics are
left out of every arm (``--no-metrics``) so that only the collector under test differs.

Per run: the steady-state output tokens/s and requests/s (``servescope analyze``), and the
collector's own CPU (``manifest.collectors.NAME.process_cpu_ns``: its child process, which
runs on the same host as the engine). Per arm: the median over reps, the spread (min–max),
and the change of the median against ``none``. Writes JSON and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__: list[str] = []

ROOT = Path(__file__).resolve().parents[1]


def _wait_ready(url: str, timeout_s: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"not ready within {timeout_s:g} s: {url}")


def _attach(a: argparse.Namespace, pid: int, arm: str, out: Path, seed: int) -> dict[str, Any]:
    collect = ",".join(["requests", *([] if arm == "none" else arm.split("+"))])
    cmd = [sys.executable, "-m", "profiler.cli", "attach", "--url", a.url, "--pid", str(pid),
           "--engine", a.engine, "--collect", collect, "--no-metrics",
           "--concurrency", str(a.concurrency), "--duration", str(a.duration),
           "--input-len", a.input_len, "--output-len", a.output_len, "--seed", str(seed),
           "--out", str(out), *(["--model", a.model] if a.model else [])]
    t0 = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    wall_s = time.monotonic() - t0
    if res.returncode != 0:
        return {"arm": arm, "error": res.stderr[-400:], "wall_s": wall_s}
    analysis = out / "analysis.json"
    subprocess.run([sys.executable, "-m", "profiler.cli", "analyze", str(out), "--json",
                    str(analysis)], capture_output=True, check=False, cwd=ROOT)
    data = json.loads(analysis.read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    collectors = manifest.get("collectors", {})
    return {
        "arm": arm, "seed": seed, "wall_s": round(wall_s, 2),
        "output_tok_per_s": data.get("steady_output_token_throughput_per_s"),
        "req_per_s": data.get("steady_request_throughput_per_s"),
        "collector_cpu_s": {name: round(c.get("process_cpu_ns", -1) / 1e9, 3)
                            for name, c in collectors.items()},
        "collector_counts": collectors,
    }


def _summary(runs: list[dict[str, Any]], arms: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for arm in arms:
        tps = [r["output_tok_per_s"] for r in runs
               if r["arm"] == arm and r.get("output_tok_per_s")]
        if not tps:
            out[arm] = {"n": 0}
            continue
        out[arm] = {"n": len(tps), "median_tok_per_s": statistics.median(tps),
                    "min": min(tps), "max": max(tps)}
    base = out.get("none", {}).get("median_tok_per_s")
    for s in out.values():
        if base and s.get("median_tok_per_s"):
            s["change_vs_none_frac"] = s["median_tok_per_s"] / base - 1
    return out


def _markdown(result: dict[str, Any]) -> str:
    lines = [f"engine: {result['engine']} · {result['device']} · {result['date']}",
             f"workload: {result['workload']}", "",
             "| arm | runs | output tok/s median | min–max | change vs none "
             "| collector CPU s/run |",
             "|---|---|---|---|---|---|"]
    for arm, s in result["summary"].items():
        if not s.get("n"):
            lines.append(f"| {arm} | 0 | – | – | – | – |")
            continue
        cpu = [sum(v for v in r["collector_cpu_s"].values() if v >= 0)
               for r in result["runs"] if r["arm"] == arm and "collector_cpu_s" in r]
        change = s.get("change_vs_none_frac")
        lines.append(f"| {arm} | {s['n']} | {s['median_tok_per_s']:.1f} | {s['min']:.1f}–"
                     f"{s['max']:.1f} | {'' if change is None else f'{change:+.1%}'} | "
                     f"{statistics.median(cpu) if cpu else 0:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", required=True)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--ready-path", default="/health")
    ap.add_argument("--model")
    ap.add_argument("--arms", default="none,gpu,stacks,gpu+stacks")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--input-len", default="fixed:64")
    ap.add_argument("--output-len", default="fixed:128")
    ap.add_argument("--device", default=platform.node())
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        raise SystemExit("give the serving command after --")
    arms = [x.strip() for x in a.arms.split(",") if x.strip()]
    work = a.out.with_suffix("")
    work.mkdir(parents=True, exist_ok=True)
    log = (work / "engine.log").open("wb")
    engine = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    runs: list[dict[str, Any]] = []

    def save() -> str:  # after every run: a run cut short keeps what it measured
        result = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"), "device": a.device,
            "engine": " ".join(command),
            "workload": f"closed loop, {a.concurrency} streams, {a.duration:g} s per run, "
                        f"input {a.input_len}, output {a.output_len}, {a.reps} reps, "
                        "interleaved",
            "runs": runs, "summary": _summary(runs, arms),
        }
        a.out.write_text(json.dumps(result, indent=1))
        md = _markdown(result)
        a.out.with_suffix(".md").write_text(md)
        return md

    try:
        ready_s = _wait_ready(a.url.rstrip("/") + a.ready_path, 900)
        print(f"engine ready after {ready_s:.1f} s (pid {engine.pid})", flush=True)
        _attach(a, engine.pid, "none", work / "warmup", 999)  # warm-up, discarded
        seed = 0
        for rep in range(a.reps):
            order = arms[rep % len(arms):] + arms[:rep % len(arms)]
            for arm in order:
                seed += 1
                r = _attach(a, engine.pid, arm, work / f"{arm}-{rep}", seed)
                runs.append(r)
                save()
                print(json.dumps({k: r.get(k) for k in ("arm", "output_tok_per_s",
                                                          "collector_cpu_s", "error")}),
                      flush=True)
    finally:
        os.killpg(engine.pid, signal.SIGINT)
        try:
            engine.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(engine.pid, signal.SIGKILL)
            engine.wait()
    print(save())


if __name__ == "__main__":
    main()
