"""What servescope's engine-metrics collection costs the engine it observes (vLLM-CPU).

    python benchmarks/collector_overhead.py --out benchmarks/results/overhead-DATE.json

Starts ``vllm serve`` on the tiny local model ONCE, warms it up, then runs the same closed-loop
workload against it in five modes, ``--reps`` times each, rotating the order every rep so
slow drift spreads over all modes:

- ``scrape``: ``servescope attach`` with engine metrics scraped every ``--interval`` s (a
  child process GETs and parses ``/metrics``: what ``servescope run`` does);
- ``bare``: the same ``servescope attach`` with ``--no-metrics`` (same client, no scraping);
- ``get-only``: ``bare``, while the harness GETs ``/metrics`` every ``--interval`` s and
  discards the body: the engine's side of a scrape (rendering the page) without the
  scraper's parsing, which runs on the same CPUs;
- ``scrape-10x``: ``scrape`` ten times as often: an effect too small to see above the noise
  at the default interval shows here about ten times larger;
- ``vllm-bench``: ``vllm bench serve`` from the vLLM venv, a neutral bare client.

Before the runs, with the engine idle, the harness GETs ``/metrics`` ``--calibrate`` times and
measures the API server's CPU per page served (less its idle CPU): the engine's cost of one
scrape without any noise from the load. The scraper's own parse CPU per scrape comes from
servescope's scraper accounting (``manifest.engine.scrapes.cpu_ns_total``).

Each run gets its own seed (fresh prompts: no prefix-cache hits carried between runs). Before
each run the harness waits for a quiet machine. Per run it records the client's own numbers
(output tokens/s and requests/s over the client's window, TTFT and ITL medians), the CPU
seconds of each engine process (API server, EngineCore, Worker) and of the client tree, and
the machine's other busy CPU (someone else's load is noise, and is shown). Writes the JSON
and a Markdown table (same name, ``.md``) and prints the table.

Definitions: servescope's window runs from the first send to the last end, vllm bench's
``duration`` from its start to its last response, so compare ``scrape`` with ``bare`` (same
client, same definitions) for the overhead; ``vllm-bench`` shows what a different client gets
from the same engine. ITL: servescope's per-token gaps of the client's socket reads; vllm
bench's gaps between SSE chunks.

``--render FILE.json`` recomputes the summary and the Markdown of an earlier result.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__: list[str] = []

ROOT = Path(__file__).resolve().parents[1]

if str(ROOT) not in sys.path:  # run as a script: make the benchmarks package importable
    sys.path.insert(0, str(ROOT))
from benchmarks.overhead_arms import (  # noqa: E402
    servescope_argv,
    servescope_numbers,
    vllm_bench_argv,
    vllm_bench_numbers,
)
from benchmarks.overhead_engine import (  # noqa: E402
    VLLM,
    engine_argv,
    engine_cpu_s,
    http_get,
    metric_total,
    start_engine,
    stop_engine,
)
from benchmarks.overhead_report import (  # noqa: E402
    MODES,
    SCRAPE_EVERY,
    markdown,
    summarize_runs,
)


def _launch() -> int:
    """Re-execute under the project venv if needed, then run."""
    venv_python = ROOT / ".venv" / "bin" / "python"
    if venv_python.exists() and Path(sys.prefix).resolve() != venv_python.parents[1].resolve():
        os.execv(venv_python, [str(venv_python), __file__, *sys.argv[1:]])
    sys.path.insert(0, str(ROOT))
    return main(sys.argv[1:])


# ------------------------------------------------------------------------------ engine


# ------------------------------------------------------------------------------ runs


class _Poller:
    """GET ``url`` every ``interval_s`` (0: never) in a thread, discarding the body."""

    def __init__(self, url: str, interval_s: float) -> None:
        self.url, self.interval_s, self.gets = url, interval_s, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True, name="metrics-get")

    def _loop(self) -> None:
        next_t = time.monotonic()
        while not self._stop.wait(max(0.0, next_t - time.monotonic())):
            if http_get(self.url, 5) is not None:
                self.gets += 1
            next_t += self.interval_s

    def __enter__(self) -> _Poller:
        if self.interval_s > 0:
            self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._t.is_alive():
            self._t.join(10)


def scrape_cost(url: str, engine_pid: int, n: int) -> dict[str, float]:
    """API-server CPU per ``/metrics`` page served, engine idle: CPU over ``n`` GETs 0.25 s
    apart less its CPU over an equally long idle stretch just before."""
    span = n * 0.25
    c0 = engine_cpu_s(engine_pid).get("api_server", 0.0)
    time.sleep(span)
    c1 = engine_cpu_s(engine_pid).get("api_server", 0.0)
    sizes = []
    for _ in range(n):
        t = time.monotonic()
        sizes.append(len(http_get(url + "/metrics", 5) or b""))
        time.sleep(max(0.0, 0.25 - (time.monotonic() - t)))
    c2 = engine_cpu_s(engine_pid).get("api_server", 0.0)
    return {
        "gets": n,
        "page_bytes": statistics.fmean(sizes),
        "api_server_idle_cpu_ms_per_s": 1e3 * (c1 - c0) / span,
        "api_server_cpu_ms_per_get": 1e3 * ((c2 - c1) - (c1 - c0)) / n,
    }


def code_version() -> str:
    """The servescope commit the client runs ("+dirty": product code differs from it; the
    working tree is shared, so this is taken at the start of every run)."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "profiler", "collectors", "analyzers"],
        capture_output=True,
        text=True,
        check=False,
    )
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def one_run(
    mode: str, rep: int, *, url: str, engine_pid: int, work: Path, a: argparse.Namespace
) -> dict[str, Any]:
    from benchmarks.peers.proctree import MACHINE, TreeSampler, machine_busy_s, wait_for_quiet

    out = work / f"rep{rep}-{mode}"
    seed = 1000 + rep * len(MODES) + MODES.index(mode)
    if mode == "vllm-bench":
        out.mkdir(parents=True)
        argv = vllm_bench_argv(url, out, a, seed)
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        numbers: Callable[[Path], dict[str, Any]] = vllm_bench_numbers
    else:
        every = a.interval * SCRAPE_EVERY[mode] if mode in SCRAPE_EVERY else None
        argv = servescope_argv(url, out, a, seed, every)
        env, numbers = dict(os.environ), servescope_numbers
    busy_before, waited = wait_for_quiet(a.quiet_cores, a.quiet_wait)
    version = code_version()
    e0, c0, m0, t0 = engine_cpu_s(engine_pid), _children_cpu_s(), machine_busy_s(), time.time()
    log = work / f"rep{rep}-{mode}.log"
    with (
        _Poller(url + "/metrics", a.interval if mode == "get-only" else 0) as poller,
        log.open("wb") as fh,
    ):
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
        tree = TreeSampler({"client": proc.pid, "engine": engine_pid}).start()
        proc.wait()
        t_exit = time.monotonic_ns()
        series = tree.stop()
    client_tree = series["client"].total_s
    wall = time.time() - t0
    e1, c1, m1 = engine_cpu_s(engine_pid), _children_cpu_s(), machine_busy_s()
    row: dict[str, Any] = {
        "mode": mode,
        "rep": rep,
        "seed": seed,
        "returncode": proc.returncode,
        "wall_s": wall,
        "quiet_before_cores": busy_before,
        "quiet_waited_s": waited,
        "harness_gets": poller.gets,
        "servescope": version,
    }
    try:
        row.update(numbers(out))
    except (OSError, ValueError, KeyError) as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
    engine = {k: e1.get(k, 0.0) - e0.get(k, 0.0) for k in e1}
    client = max(c1 - c0, client_tree)
    row.update(
        {
            "engine_cpu_s": engine,
            "client_cpu_s": client,
            "client_cpu_rusage_s": c1 - c0,
            "client_cpu_tree_s": client_tree,
            "other_cpu_cores": max(0.0, (m1 - m0) - sum(engine.values()) - client) / wall,
        }
    )
    if row.get("duration_s"):
        # the same over the client's measured window only (the last duration_s before it
        # exited; both tools exit within a second or two of their window's end): start-up
        # imports, e.g. vllm bench's ~10 s, stay out
        w0 = t_exit - int(row["duration_s"] * 1e9)
        busy = {k: v.between(w0, t_exit) for k, v in series.items()}
        other = busy[MACHINE] - busy["engine"] - busy["client"]
        row["other_cpu_cores_window"] = max(0.0, other) / row["duration_s"]
    return row


# ------------------------------------------------------------------------------ report


def machine() -> dict[str, Any]:
    model = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    mem = (
        int(
            next(
                ln.split()[1]
                for ln in Path("/proc/meminfo").read_text().splitlines()
                if ln.startswith("MemTotal")
            )
        )
        * 1024
    )
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": mem / 2**30,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


# ------------------------------------------------------------------------------ main


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument(
        "--out",
        type=Path,
        default=ROOT / "benchmarks" / "results" / f"overhead-{dt.date.today():%Y-%m-%d}.json",
    )
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--requests", type=int, default=160)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--input-len", type=int, default=64)
    p.add_argument("--output-len", type=int, default=128)
    p.add_argument("--interval", type=float, default=1.0, help="scrape interval, s")
    p.add_argument("--port", type=int, default=18350)
    p.add_argument(
        "--engine-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for vllm serve (repeatable)",
    )
    p.add_argument(
        "--engine-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra vllm serve argument (repeatable), e.g. --enforce-eager",
    )
    p.add_argument(
        "--quiet-cores",
        type=float,
        default=0.3,
        help="wait until the machine's busy CPU is at most this before each run",
    )
    p.add_argument(
        "--max-other-cores",
        type=float,
        default=0.3,
        help="leave a run out of the means if other processes used more CPU than this",
    )
    p.add_argument("--calibrate", type=int, default=40, help="GETs for the idle scrape cost")
    p.add_argument("--render", type=Path, help="re-summarize this result JSON; run nothing")
    p.add_argument("--quiet-wait", type=float, default=120.0, help="…for at most this, s")
    return p.parse_args(argv)


def run_matrix(a: argparse.Namespace, modes: Sequence[str], work: Path) -> dict[str, Any]:
    """Start the engine, warm it up, run every rep of every mode, stop it."""
    url = f"http://127.0.0.1:{a.port}"
    eng_argv = engine_argv(a.port, a.engine_env, a.engine_arg)
    print(f"starting vLLM: {' '.join(eng_argv)}", flush=True)
    t_start = time.monotonic()
    proc = start_engine(eng_argv, work / "vllm.log", url)
    print(f"ready after {time.monotonic() - t_start:.0f} s", flush=True)
    rows: list[dict[str, Any]] = []
    try:
        warm = argparse.Namespace(**{**vars(a), "requests": 2 * a.concurrency})
        warm_argv = servescope_argv(url, work / "warmup", warm, 1, None)
        subprocess.run(warm_argv, cwd=ROOT, capture_output=True, check=True)
        cost = scrape_cost(url, proc.pid, a.calibrate) if a.calibrate else {}
        print(f"engine cost of a scrape (idle): {cost}", flush=True)
        for rep in range(a.reps):
            for mode in [*modes[rep % len(modes) :], *modes[: rep % len(modes)]]:
                row = one_run(mode, rep, url=url, engine_pid=proc.pid, work=work, a=a)
                rows.append(row)
                flat = {k: v for k, v in row.items() if not isinstance(v, dict)}
                print(json.dumps(flat, default=str), flush=True)
        hits = metric_total(url, "vllm:prefix_cache_hits_total")
    finally:
        stop_engine(proc)
    n = work / "repN"
    commands = {
        "engine": " ".join(eng_argv),
        "scrape": " ".join(servescope_argv(url, n, a, 0, a.interval)),
        "bare": " ".join(servescope_argv(url, n, a, 0, None)),
        "scrape-10x": " ".join(servescope_argv(url, n, a, 0, a.interval / 10)),
        "get-only": " ".join(servescope_argv(url, n, a, 0, None))
        + f"  # + the harness GETs {url}/metrics every {a.interval:g} s",
        "vllm-bench": " ".join(vllm_bench_argv(url, n, a, 0)),
    }
    meta = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "vllm_version": "0.32.0 (vllm-cpu)",
        "reps": a.reps,
        "modes": list(modes),
        "workload": f"closed loop, {a.concurrency} streams, {a.requests} requests per run, "
        f"{a.input_len}-token prompts (tiny-llama tokenizer), {a.output_len} output tokens "
        f"(ignore_eos), streaming /v1/completions; scrape interval {a.interval:g} s",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "prefix_cache_hits_total_at_end": hits,
        "scrape_cost_idle": cost,
        "work_dir": str(work),
        "commands": {
            k: v.replace(str(ROOT) + "/", "")
            for k, v in commands.items()
            if k == "engine" or k in modes
        },
    }
    return {"meta": meta, "runs": rows}


def write(doc: dict[str, Any], out: Path, max_other_cores: float) -> None:
    doc["meta"].setdefault("settings", {})["max_other_cores"] = max_other_cores
    doc["summary"] = summarize_runs(doc["runs"], max_other_cores)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({k: doc[k] for k in ("meta", "summary", "runs")}, indent=1) + "\n")
    md = markdown(doc)
    out.with_suffix(".md").write_text(md)
    print(md)


def main(argv: Sequence[str]) -> int:
    a = parse(argv)
    if a.render is not None:
        write(json.loads(a.render.read_text()), a.render, a.max_other_cores)
        return 0
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    if bad := [m for m in modes if m not in MODES]:
        raise SystemExit(f"unknown mode(s) {bad}; choose from {', '.join(MODES)}")
    if not VLLM.exists():
        raise SystemExit(f"{VLLM} not found (run scripts/setup_vllm_cpu.sh)")
    work = ROOT / ".bench" / "overhead" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    work.mkdir(parents=True)
    write(run_matrix(a, modes, work), a.out, a.max_other_cores)
    return 0


if __name__ == "__main__":
    raise SystemExit(_launch())
