"""Kernel-trace ingestion speed and peak memory: events/s and peak RSS per arm, each arm in
a fresh process (peak RSS = that process's ``ru_maxrss``), on generated traces of N events
(:mod:`benchmarks.trace_gen`) and on real captures.

Arms (add one with a function in ``ARMS``; HolisticTraceAnalysis, load and analysis, is
side by side with servescope's in :mod:`benchmarks.trace_vs_hta`):

- ``servescope``: :func:`collectors.kernels.ingest_traces` into a run directory's parquet
  tables (byte pieces cut at event boundaries, parsed by arrow's JSON reader on worker
  threads and sorted into the tables there; a piece arrow rejects goes the orjson way);
- ``servescope_orjson``: the same with every piece parsed by orjson and the columns built
  in Python (``ingest_trace(arrow=False)``, the way before arrow);
- ``ijson``: the same tables and batcher, events parsed by ``ijson.items`` (yajl2_c);
- ``orjson_whole``: ``orjson.loads`` of the whole decompressed file and the same batcher
  (what HTA/TraceLens do before their own processing);
- ``servescope_parse`` / ``servescope_arrow_parse`` / ``ijson_parse``: parsing alone (no
  tables: orjson pieces, arrow pieces, ijson), to choose the parser.

Time and memory are the arm's alone: numpy, pandas, pyarrow and orjson are imported before the clock
starts, and ``base_rss_mb`` is the process's RSS then.

    python -m benchmarks.trace_ingest --events 100000 1000000 5000000 \\
        --real tests/data/traces/tinyrun_rank0.1795344569314968630.pt.trace.json.gz
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["ARMS", "main"]


def _open(path: Path) -> Any:
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _batched(events: Iterator[dict[str, Any]], n: int = 4096) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for ev in events:
        batch.append(ev)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def _with_batcher(batches: Iterator[list[dict[str, Any]]], out: Path) -> int:
    from collectors.kernels.ingest import ParquetSink
    from collectors.kernels.tables import EventBatcher
    from servescope.gcpause import gc_paused

    sink = ParquetSink(out)
    batcher = EventBatcher(0, sink.write)
    batcher.shift_ns = 0
    with gc_paused():  # as the servescope arm
        for batch in batches:
            batcher.add(batch)
        batcher.close()
    sink.close([])
    return batcher.events_read


def arm_servescope(path: Path, out: Path) -> int:
    from collectors.kernels import ingest_traces

    rec = ingest_traces([path], out, None)[0]
    return rec.events_read


def arm_servescope_orjson(path: Path, out: Path) -> int:
    from collectors.kernels.ingest import ParquetSink, ingest_trace

    sink = ParquetSink(out)
    rec = ingest_trace(path, sink, None, arrow=False)
    sink.close([rec])
    return rec.events_read


def arm_ijson(path: Path, out: Path) -> int:
    import ijson  # benchmark arm only: not a dependency (pip install ijson)

    with _open(path) as f:
        return _with_batcher(_batched(ijson.items(f, "traceEvents.item", use_float=True)),
                             out)


def arm_orjson_whole(path: Path, out: Path) -> int:
    import orjson

    with _open(path) as f:
        events = orjson.loads(f.read())["traceEvents"]
    return _with_batcher(iter([events]), out)


def arm_servescope_parse(path: Path, _out: Path) -> int:
    from collectors.kernels.jsonstream import TraceStream

    return sum(len(batch) for batch in TraceStream(path))


def arm_servescope_arrow_parse(path: Path, _out: Path) -> int:
    from collectors.kernels.jsonstream import ArrowParse, TraceStream
    from collectors.kernels.tables import arrow_accepts, arrow_readable, parse_schema

    stream = TraceStream(path, arrow=ArrowParse(parse_schema(), arrow_readable, arrow_accepts))
    return sum(len(b) if isinstance(b, list) else b.num_rows for b in stream)


def arm_ijson_parse(path: Path, _out: Path) -> int:
    import ijson  # benchmark arm only: not a dependency (pip install ijson)

    with _open(path) as f:
        return sum(1 for _ in ijson.items(f, "traceEvents.item", use_float=True))


ARMS: dict[str, Callable[[Path, Path], int]] = {
    "servescope": arm_servescope, "servescope_orjson": arm_servescope_orjson,
    "ijson": arm_ijson, "orjson_whole": arm_orjson_whole,
    "servescope_parse": arm_servescope_parse,
    "servescope_arrow_parse": arm_servescope_arrow_parse, "ijson_parse": arm_ijson_parse}


def _worker(arm: str, path: Path) -> None:
    import numpy  # noqa: F401  (imports are not the arm's cost)
    import orjson  # noqa: F401
    import pandas  # noqa: F401  (pyarrow imports it at the first pa.array of strings)
    import pyarrow.parquet  # noqa: F401

    import collectors.kernels  # noqa: F401

    base_mb = _rss_now_mb()
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        n = ARMS[arm](path, Path(d))
        secs = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"arm": arm, "file": path.name, "events": n, "seconds": round(secs, 3),
                      "events_per_s": round(n / secs), "peak_rss_mb": round(rss_mb, 1),
                      "base_rss_mb": round(base_mb, 1)}))


def _rss_now_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _run(arm: str, path: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.trace_ingest", "--worker", arm,
                          str(path)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"arm": arm, "file": path.name, "error": out.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, nargs="*", default=[100_000, 1_000_000, 5_000_000])
    ap.add_argument("--arms", default="servescope,servescope_orjson,ijson,orjson_whole")
    ap.add_argument("--real", type=Path, nargs="*", default=[])
    ap.add_argument("--keep", type=Path, default=None, help="directory for generated traces")
    ap.add_argument("--worker", nargs=2, metavar=("ARM", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(args.worker[0], Path(args.worker[1]))
        return
    from benchmarks.trace_gen import generate

    arms = [a for a in args.arms.split(",") if a]
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or Path(tmp)
        files = list(args.real)
        for n in args.events:
            path = where / f"gen_{n}.pt.trace.json.gz"
            if not path.exists():
                generate(path, n)
            files.append(path)
        for path in files:
            for arm in arms:
                print(json.dumps({**_run(arm, path), "bytes": path.stat().st_size}),
                      flush=True)


if __name__ == "__main__":
    main()
