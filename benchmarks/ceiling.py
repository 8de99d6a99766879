"""The client-ceiling matrix: fresh reference server per cell, one tool per cell.

Entry points: ``python benchmarks/client_ceiling.py`` (any python3; re-executes itself under
the project venv) or ``.venv/bin/python -m benchmarks.ceiling``. See client_ceiling.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.ceiling_report import write_outputs
from benchmarks.peers import RUNNERS, lookup
from benchmarks.peers.common import CellResult, CellSpec
from benchmarks.peers.proctree import wait_for_quiet
from benchmarks.peers.tokenizer import ensure_tokenizer

__all__ = ["main", "run_cell"]

_ROOT = Path(__file__).resolve().parents[1]

DEFAULT_TOOLS = (
    "null",
    "servescope",
    "servescope-w2",
    "vllm",
    "aiperf",
    "aiperf-w4",
    "guidellm",
)
_SERVER_CPU = 0  # with --pin: the server's CPU; tools get the others


def _server_args(output_tokens: int) -> list[str]:
    return [
        "--no-truth", "--ttft-ms", "0", "--itl-ms", "0", "--output-tokens", str(output_tokens),
        "--tokens-per-event", "1", "--events-per-write", "1",
    ]  # fmt: skip


def _pin_all_threads(pid: int, cpus: set[int]) -> None:
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)


def _model_id(url: str) -> str:
    with urllib.request.urlopen(url + "/v1/models", timeout=10) as resp:  # loopback URL
        models: dict[str, Any] = json.loads(resp.read())
    return str(models["data"][0]["id"])


def run_cell(tool: str, concurrency: int, args: argparse.Namespace, tokenizer: Path) -> CellResult:
    """Start a fresh reference server, run one tool against it, stop the server."""
    from profiler.selftest.process import RefServerError, start_refserver

    base = args.work_dir / f"c{concurrency}" / tool
    work, k = base, 0
    while work.exists():  # a fresh directory per attempt: never parse an earlier one's output
        k += 1
        work = base.with_name(f"{tool}.{k}")
    work.mkdir(parents=True)
    client_cpus = None
    background, waited = wait_for_quiet(args.quiet_cores, args.quiet_wait)
    if background > args.quiet_cores:
        print(f"    machine still busy ({background:.2f} cores) after {waited:.0f} s", flush=True)
    try:
        server = start_refserver(extra_args=_server_args(args.output_tokens))
    except RefServerError as exc:
        return CellResult(tool, concurrency, args.requests, error=f"reference server: {exc}")
    with server:
        if args.pin:
            _pin_all_threads(server.pid, {_SERVER_CPU})
            client_cpus = frozenset(os.sched_getaffinity(0) - {_SERVER_CPU})
        spec = CellSpec(
            url=server.url,
            model=_model_id(server.url),
            concurrency=concurrency,
            requests=args.requests,
            input_tokens=args.input_tokens,
            output_tokens=args.output_tokens,
            tokenizer_dir=tokenizer,
            work_dir=work,
            server_pid=server.pid,
            client_cpus=client_cpus,
            timeout_s=args.timeout,
        )
        try:
            result = lookup(tool)(spec)
        except Exception as exc:  # noqa: BLE001 - a runner bug must not stop the other tools
            result = CellResult(tool, concurrency, args.requests, error=f"runner: {exc!r}")
        if server.process.poll() is not None:
            result = _with_error(result, f"reference server died: {server.stderr_text()[-500:]}")
    notes = result.notes
    if background > args.quiet_cores:
        notes += (f"machine busy {background:.2f} cores just before the cell (others' work)",)
    return dataclasses.replace(result, background_cpu_before=background, notes=notes)


def _attempt(
    tool: str, concurrency: int, args: argparse.Namespace, tokenizer: Path, others: list[float]
) -> CellResult:
    print(f"[{time.strftime('%H:%M:%S')}] {tool} @ {concurrency} ...", flush=True)
    cell = run_cell(tool, concurrency, args, tokenizer)
    others.append(round(cell.other_cpu_util, 3))
    status = cell.error.splitlines()[0][:120] if cell.error else "ok"
    print(
        f"    {cell.events_per_s:,.0f} events/s, {cell.cpu_us_per_event:.1f} µs/event, "
        f"server {cell.server_cpu_util:.0%}, other {cell.other_cpu_util:.2f} cores, "
        f"{cell.outer_wall_s:.0f} s: {status}",
        flush=True,
    )
    return cell


def run_cell_retrying(
    tool: str, concurrency: int, args: argparse.Namespace, tokenizer: Path
) -> CellResult:
    """Run a cell again (up to ``args.retries`` times) while others' work disturbed it.

    Disturbed = more than ``args.max_other_cores`` cores busy outside the tool and the server
    during the window (kernel loopback work alone is ~0.3 cores at 100k events/s here). The
    least disturbed attempt is kept; every attempt's figure is recorded.
    """
    others: list[float] = []
    best = cell = _attempt(tool, concurrency, args, tokenizer, others)
    for _ in range(args.retries):
        if cell.error is not None or cell.other_cpu_util <= args.max_other_cores:
            break
        print("    disturbed by other work on the machine; running it again", flush=True)
        cell = _attempt(tool, concurrency, args, tokenizer, others)
        if cell.error is None and cell.other_cpu_util < best.other_cpu_util:
            best = cell
    notes = best.notes
    if best.other_cpu_util > args.max_other_cores:
        notes += (f"{best.other_cpu_util:.2f} cores busy outside tool and server (disturbed)",)
    extra = {**best.extra, "attempts_other_cpu": others}
    return dataclasses.replace(best, notes=notes, extra=extra)


def _with_error(result: CellResult, error: str) -> CellResult:
    joined = error if result.error is None else f"{result.error}; {error}"
    return dataclasses.replace(result, error=joined)


def _sigterm_as_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt("SIGTERM")


def _venv_version(python: Path, dist: str) -> str | None:
    if not python.exists():
        return None
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def _versions() -> dict[str, str | None]:
    import importlib.metadata as md

    return {
        "servescope": md.version("servescope"),
        "vllm": _venv_version(_ROOT / ".servescope/vllm-cpu/venv/bin/python", "vllm"),
        "aiperf": _venv_version(_ROOT / ".bench/aiperf/bin/python", "aiperf"),
        "guidellm": _venv_version(_ROOT / ".bench/guidellm/bin/python", "guidellm"),
        "aiohttp (servescope, server)": md.version("aiohttp"),
    }


def _machine() -> dict[str, Any]:
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "memory_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def _git_commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(_ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


def _git_dirty_paths() -> list[str]:
    """Uncommitted changes under the client's packages (others may be editing them)."""
    done = subprocess.run(
        ["git", "-C", str(_ROOT), "status", "--porcelain", "--", "profiler", "collectors"],
        capture_output=True,
        text=True,
        check=False,
    )
    return [line[3:] for line in done.stdout.splitlines()]


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    today = dt.date.today().isoformat()
    p = argparse.ArgumentParser(
        prog="benchmarks/client_ceiling.py",
        description="Client ingestion ceiling of servescope and its peers (see the module doc).",
    )
    p.add_argument("--out", type=Path, default=_ROOT / f"benchmarks/results/ceiling-{today}.json")
    p.add_argument("--tools", default=",".join(DEFAULT_TOOLS), help=f"of {', '.join(RUNNERS)}")
    p.add_argument("--concurrency", default="64,256", help="comma-separated stream counts")
    p.add_argument("--requests", type=int, default=5000, help="requests per cell")
    p.add_argument("--output-tokens", type=int, default=256, help="tokens (events) per request")
    p.add_argument("--input-tokens", type=int, default=16, help="prompt tokens")
    p.add_argument(
        "--pin", action="store_true", help=f"server on CPU {_SERVER_CPU}, tools on the others"
    )
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per tool run")
    p.add_argument(
        "--quiet-cores",
        type=float,
        default=0.25,
        help="before each cell, wait until the machine is this idle (busy cores over 2 s)",
    )
    p.add_argument("--quiet-wait", type=float, default=300.0, help="seconds to wait for quiet")
    p.add_argument(
        "--max-other-cores",
        type=float,
        default=0.5,
        help="re-run a cell when more cores than this were busy outside tool and server",
    )
    p.add_argument("--retries", type=int, default=2, help="re-runs of a disturbed cell")
    p.add_argument(
        "--work-dir", type=Path, default=None, help="tool artifacts (default .bench/ceiling/TIME)"
    )
    args = p.parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    args.work_dir = (args.work_dir or _ROOT / ".bench" / "ceiling" / stamp).resolve()
    args.tool_list = [t.strip() for t in args.tools.split(",") if t.strip()]
    args.concurrencies = [int(c) for c in args.concurrency.split(",")]
    for tool in args.tool_list:
        if tool not in RUNNERS:
            p.error(f"unknown tool {tool!r}; valid: {', '.join(RUNNERS)}")
    if args.pin and len(os.sched_getaffinity(0)) < 2:
        p.error("--pin needs at least 2 CPUs")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    tokenizer = ensure_tokenizer(_ROOT / ".bench" / "tokenizer")
    meta: dict[str, Any] = {
        "benchmark": "client ingestion ceiling",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "versions": _versions(),
        "repo_commit": _git_commit(),
        "repo_uncommitted_client_paths": _git_dirty_paths(),
        "settings": {
            "concurrency": args.concurrencies,
            "requests_per_cell": args.requests,
            "output_tokens": args.output_tokens,
            "tokens_per_event": 1,
            "input_tokens": args.input_tokens,
            "endpoint": "/v1/completions (streaming, ignore_eos)",
            "server": "profiler.selftest.serve " + " ".join(_server_args(args.output_tokens)),
            "pinned": f"server CPU {_SERVER_CPU}, tools the rest" if args.pin else "no",
        },
        "work_dir": str(args.work_dir),
    }
    cells: list[CellResult] = []
    for concurrency in args.concurrencies:
        for tool in args.tool_list:
            cells.append(run_cell_retrying(tool, concurrency, args, tokenizer))
            write_outputs(args.out, cells, meta)  # partial results survive a crash
    md, md_path = write_outputs(args.out, cells, meta)
    print(md)
    print(f"\nwrote {args.out} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
