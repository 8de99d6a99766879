"""Kernel-trace analysis side by side with HolisticTraceAnalysis: time and peak memory of
servescope's load + full analysis against HTA's load + kernel, temporal and idle-time
breakdowns, on the same trace files, and servescope alone up to millions of events.

Arms (each in a fresh process, its imports done before the clock starts):

- ``servescope``: :func:`collectors.kernels.ingest_traces` into a temporary run directory
  (its parquet tables written as always), the analysis columns also kept in memory as they
  are written (``also=MemorySink(ANALYSIS_COLUMNS)``, so the tables are not read back),
  :func:`analyzers.kernels.load.events_frame` and :func:`analyzers.kernels.analyze_kernels`
  (steps, per-step timelines, categories, phase shares, top kernels, launch-bound verdict);
- ``servescope_load``: the ingestion alone;
- ``hta``: ``TraceAnalysis(trace_dir=...)`` (its default parser config) then
  ``get_gpu_kernel_breakdown``, ``get_temporal_breakdown`` and ``get_idle_time_breakdown``,
  all with ``visualize=False``; runs in HTA's own venv (``bash benchmarks/install_peers.sh
  traceinsight``), whose interpreter ``--hta-python`` names;
- ``servescope_base`` / ``hta_base``: the imports alone, the baseline each tool's peak RSS
  is reported net of.

Peak RSS is the child's ``ru_maxrss`` as :func:`os.wait4` returns it (the whole process,
interpreter and imports included); ``net`` subtracts the tool's baseline arm. Both tools
report the GPU events they saw (count and Σ duration): printed side by side as the check
that they analysed the same thing (HTA rounds each event to whole µs, ``ts`` up and the end
down, so its Σ is lower by at most 2 µs per event).

    python -m benchmarks.trace_vs_hta --events 200000 500000 1000000 \\
        --scaling 2000000 5000000 --keep /tmp/traces
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

__all__ = ["ARMS", "agree", "main"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HTA_PYTHON = ROOT / ".bench" / "traceinsight" / "bin" / "python"
RESULTS = ROOT / "benchmarks" / "results"


def _servescope_imports() -> None:
    import numpy  # noqa: F401
    import orjson  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import analyzers.kernels  # noqa: F401
    import collectors.kernels  # noqa: F401


def _hta_imports() -> None:
    import hta.trace_analysis  # type: ignore[import-not-found,unused-ignore]  # noqa: F401  (HTA venv only)


def _servescope(trace: Path, *, analyze: bool) -> dict[str, Any]:
    from analyzers.kernels import analyze_kernels
    from analyzers.kernels.load import ANALYSIS_COLUMNS, events_frame
    from collectors.kernels import ingest_traces
    from collectors.kernels.ingest import MemorySink
    from collectors.kernels.tables import EVENT_TABLES

    with tempfile.TemporaryDirectory() as run_dir:
        kept = MemorySink(ANALYSIS_COLUMNS) if analyze else None
        recs = ingest_traces([trace], Path(run_dir), None, also=kept)
        out: dict[str, Any] = {"events": sum(r.events_read for r in recs)}
        if kept is not None:
            tables = kept.tables(recs)
            del kept
            parts = [getattr(tables, t) for t in EVENT_TABLES]
            del tables  # the frame's conversion frees each buffer as it goes
            events = events_frame(parts)
            result = analyze_kernels(events)
            out.update(gpu_events=result.gpu_events,
                       gpu_time_us=sum(c.total_ns for c in result.categories) / 1000,
                       steps=len(result.steps))
    return out


def arm_servescope(trace: Path) -> dict[str, Any]:
    return _servescope(trace, analyze=True)


def arm_servescope_load(trace: Path) -> dict[str, Any]:
    return _servescope(trace, analyze=False)


def arm_hta(trace: Path) -> dict[str, Any]:
    from hta.trace_analysis import TraceAnalysis  # type: ignore[import-not-found,unused-ignore]

    analysis = TraceAnalysis(trace_dir=str(trace.parent))
    by_type, by_kernel = analysis.get_gpu_kernel_breakdown(visualize=False)
    analysis.get_temporal_breakdown(visualize=False)
    analysis.get_idle_time_breakdown(visualize=False)
    counts = (by_kernel["sum (us)"] / by_kernel["mean (us)"]).round()
    # the GPU rows HTA parsed (its trace frames: stream >= 0), the input its breakdowns read
    rows = sum(int((analysis.t.get_trace(r)["stream"] >= 0).sum())
               for r in analysis.t.get_ranks())
    negative = int((by_kernel["sum (us)"] < 0).sum())
    return {"gpu_events": int(counts.sum()), "gpu_time_us": float(by_type["sum"].sum()),
            "gpu_rows": rows, "negative_kernel_sums": negative}


def _none(_trace: Path) -> dict[str, Any]:
    return {}


ARMS: dict[str, tuple[Callable[[], None], Callable[[Path], dict[str, Any]]]] = {
    "servescope_base": (_servescope_imports, _none),
    "servescope_load": (_servescope_imports, arm_servescope_load),
    "servescope": (_servescope_imports, arm_servescope),
    "hta_base": (_hta_imports, _none),
    "hta": (_hta_imports, arm_hta),
}


def _worker(arm: str, trace: Path) -> None:
    imports, run = ARMS[arm]
    imports()
    t0 = time.perf_counter()
    out = run(trace)
    secs = time.perf_counter() - t0
    print(json.dumps({"arm": arm, "seconds": round(secs, 3), **out}))


def _run(python: str, arm: str, trace: Path) -> dict[str, Any]:
    """One arm in a fresh process: its JSON line plus the process's peak RSS (wait4)."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [python, "-m", "benchmarks.trace_vs_hta", "--worker", arm, str(trace)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=err, env={**os.environ,
                                                                "PYTHONPATH": str(ROOT)})
        assert proc.stdout is not None
        stdout = proc.stdout.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
            return {"arm": arm, "error": " | ".join(tail)}
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    return result


def _trace_dir(where: Path, name: str, make: Callable[[Path], object]) -> Path:
    """``where/name/rank0.pt.trace.json.gz`` (a directory of its own: HTA reads every trace
    file of the directory it is given)."""
    d = where / name
    d.mkdir(parents=True, exist_ok=True)
    path = d / "rank0.pt.trace.json.gz"
    if not path.exists():
        make(path)
    return path


def _hta_version(python: str) -> str:
    out = subprocess.run([python, "-c", "import importlib.metadata as m; "
                          "print(m.version('traceinsight'))"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() or "not installed"


def _measure(trace: Path, arms: list[str], hta_python: str, label: str) -> dict[str, Any]:
    row: dict[str, Any] = {"trace": label, "bytes": trace.stat().st_size}
    for arm in arms:
        python = hta_python if arm.startswith("hta") else sys.executable
        res = _run(python, arm, trace)
        row[arm] = res
        print(json.dumps({"trace": label, **res}), flush=True)
    return row


def _net(row: dict[str, Any], arm: str, base: dict[str, Any]) -> float | None:
    r = row.get(arm, {})
    b = base.get(arm.split("_", maxsplit=1)[0] + "_base", {})
    if "peak_rss_mb" not in r or "peak_rss_mb" not in b:
        return None
    return float(r["peak_rss_mb"]) - float(b["peak_rss_mb"])


def _fmt(v: float | None, unit: str = "") -> str:
    return "–" if v is None else f"{v:,.2f}{unit}" if v < 10 else f"{v:,.0f}{unit}"


def _count(arm: dict[str, Any], key: str) -> str:
    v = arm.get(key)
    return "–" if v is None else f"{round(v):,}"


def agree(servescope: dict[str, Any], hta: dict[str, Any]) -> str:
    """"yes" when both saw the same number of GPU events and HTA's Σ duration is below
    servescope's by no more than its rounding (2 µs an event), else what differs (with how
    many GPU rows HTA parsed, and its kernels whose summed duration came out negative)."""
    if "gpu_events" not in servescope or "gpu_events" not in hta:
        return "–"
    n_s, n_h = servescope["gpu_events"], hta["gpu_events"]
    if n_s != n_h:
        extra = ""
        if "gpu_rows" in hta:
            extra = f"; HTA parsed {hta['gpu_rows']:,} GPU rows"
        if hta.get("negative_kernel_sums"):
            extra += f", {hta['negative_kernel_sums']} kernels with a negative Σ"
        return f"NO: breakdown {n_s:,} vs {n_h:,} events{extra}"
    gap = servescope["gpu_time_us"] - hta["gpu_time_us"]
    return "yes" if 0 <= gap <= 2 * n_s else f"NO: Σ differs by {gap:,.0f} µs"


def _markdown(rows: list[dict[str, Any]], base: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [f"# servescope vs HolisticTraceAnalysis, {meta['date']} ({meta['machine']})", "",
             f"servescope {meta['servescope']}, traceinsight (HTA) {meta['hta']}, "
             f"Python {meta['python']}. Baseline RSS (imports only): servescope "
             f"{_fmt(base.get('servescope_base', {}).get('peak_rss_mb'), ' MB')}, HTA "
             f"{_fmt(base.get('hta_base', {}).get('peak_rss_mb'), ' MB')}.", "",
             "| trace | events | servescope load | servescope load+analysis | HTA load+3 "
             "breakdowns | speed-up | peak RSS net: servescope / HTA | GPU events "
             "servescope / HTA | Σ GPU time µs servescope / HTA | agree |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        s, sl, h = row.get("servescope", {}), row.get("servescope_load", {}), row.get("hta", {})
        speed = (h["seconds"] / s["seconds"] if "seconds" in h and s.get("seconds")
                 else None)
        lines.append(
            f"| {row['trace']} | {s.get('events', sl.get('events', 0)):,} | "
            f"{_fmt(sl.get('seconds'), ' s')} | {_fmt(s.get('seconds'), ' s')} | "
            f"{_fmt(h.get('seconds'), ' s') if 'error' not in h else 'failed'} | "
            f"{_fmt(speed, '×')} | {_fmt(_net(row, 'servescope', base), ' MB')} / "
            f"{_fmt(_net(row, 'hta', base), ' MB')} | {_count(s, 'gpu_events')} / "
            f"{_count(h, 'gpu_events')} | {_count(s, 'gpu_time_us')} / "
            f"{_count(h, 'gpu_time_us')} | {agree(s, h)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, nargs="*", default=[200_000, 500_000, 1_000_000],
                    help="generated trace sizes run with every arm")
    ap.add_argument("--scaling", type=int, nargs="*", default=[],
                    help="generated trace sizes run with servescope's arms only")
    ap.add_argument("--real", type=Path, nargs="*", default=[],
                    help="real trace files (every arm)")
    ap.add_argument("--keep", type=Path, default=None, help="directory for generated traces")
    ap.add_argument("--hta-python", default=str(DEFAULT_HTA_PYTHON))
    ap.add_argument("--out", default=None, help="results file stem under benchmarks/results")
    ap.add_argument("--machine", default="dev-2cpu")
    ap.add_argument("--worker", nargs=2, metavar=("ARM", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(args.worker[0], Path(args.worker[1]))
        return
    _bench(args)


def _bench(args: argparse.Namespace) -> None:
    import shutil

    from benchmarks.trace_gen import generate

    if not Path(args.hta_python).exists():
        sys.exit(f"no HTA interpreter at {args.hta_python}: run "
                 "`bash benchmarks/install_peers.sh traceinsight` first")
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": args.machine,
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "servescope": _servescope_version(), "hta": _hta_version(args.hta_python),
            "load_avg_start": os.getloadavg()}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or Path(tmp)
        one = Path(tmp) / "one"
        one.mkdir()
        base_trace = _trace_dir(one, "base", partial(generate, events=1000))
        base = {arm: _run(args.hta_python if arm.startswith("hta") else sys.executable, arm,
                          base_trace) for arm in ("servescope_base", "hta_base")}
        print(json.dumps(base), flush=True)
        side = ["servescope_load", "servescope", "hta"]
        for real in args.real:
            path = _trace_dir(Path(tmp) / "real", real.name,
                              partial(shutil.copyfile, real))
            rows.append(_measure(path, side, args.hta_python, f"real: {real.name}"))
        for n in args.events:
            path = _trace_dir(where, f"gen_{n}", partial(generate, events=n))
            rows.append(_measure(path, side, args.hta_python, f"generated {n:,}"))
        for n in args.scaling:
            path = _trace_dir(where, f"gen_{n}", partial(generate, events=n))
            rows.append(_measure(path, side[:2], args.hta_python, f"generated {n:,}"))
    meta["load_avg_end"] = os.getloadavg()
    stem = args.out or f"trace-vs-hta-{meta['date']}-{args.machine}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(
        {"meta": meta, "baseline": base, "rows": rows}, indent=1) + "\n", encoding="utf-8")
    md = _markdown(rows, base, meta)
    (RESULTS / f"{stem}.md").write_text(md, encoding="utf-8")
    print(md)
    print(f"peak RSS of this parent: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10}"
          f" MB; results in {RESULTS / stem}.{{json,md}}")


def _servescope_version() -> str:
    out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False)
    return f"commit {out.stdout.strip() or 'unknown'}"


if __name__ == "__main__":
    main()
