"""The kernel-trace tables (``RUN/kernels/``, already on the run's clock at ingestion) as
slices: GPU kernels, memcpy and memset on one track per (rank, device, stream), GPU-side
annotations on one per (rank, device), runtime calls, CPU ops and step annotations on one per
(rank, trace pid, trace tid); and an arrow from each launch to the first GPU event that
carries its correlation id (Chrome's flow v2: ``bind_id`` with ``flow_out``/``flow_in``).

The tables are read one parquet batch at a time (16 384 rows, only the columns used) and each
batch is written before the next is read: memory holds one batch's events, never every
event, plus, for the flow join, NumPy arrays of the GPU and runtime tables' (rank,
correlation) keys (tens of bytes a row at the join's peak; measured: 1 M kernels + 1 M
launches raised the peak by 220 MB, 200 k + 200 k by 120 MB).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from reports.perfetto.tracks import Tracks, rank_pid
from reports.perfetto.writer import TraceWriter
from servescope.rundir.layout import (
    KERNEL_ANNOTATIONS_FILE,
    KERNEL_CPU_OPS_FILE,
    KERNEL_GPU_FILE,
    KERNEL_RUNTIME_FILE,
    KERNEL_TRACES_FILE,
    KERNELS_DIR,
    RunDirError,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["KernelSlices", "kernel_slices"]

BATCH_ROWS = 16_384
# outer before inner: Perfetto nests slices of one thread that start together in file order
_TABLES = (KERNEL_ANNOTATIONS_FILE, KERNEL_CPU_OPS_FILE, KERNEL_RUNTIME_FILE, KERNEL_GPU_FILE)
_COLUMNS = ["rank", "kind", "name", "cat", "t_start_ns", "dur_ns", "device", "stream",
            "correlation_id", "pid", "tid", "external_id", "bytes", "grid", "block"]
_CORR_BITS = 32
_COUNT_NAMES = {"kernel": "GPU kernel slices", "memcpy": "memcpy slices",
                "memset": "memset slices", "gpu_annotation": "GPU annotation slices",
                "runtime": "runtime call slices", "cpu_op": "CPU op slices",
                "annotation": "step annotation slices", "flows": "launch→GPU flows"}


def _read(path: Path, columns: list[str]) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, columns=columns)
    except Exception as exc:  # noqa: BLE001 - one line naming the file
        raise RunDirError(f"cannot read {path}: {exc}") from None


def _keys(path: Path) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per row: (rank, correlation) packed into one int (−1 without a correlation) and its
    start time."""
    import numpy as np

    if not path.is_file():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    t = _read(path, ["rank", "correlation_id", "t_start_ns"])
    rank = t.column("rank").to_numpy().astype(np.int64, copy=False)
    corr = t.column("correlation_id").to_numpy().astype(np.int64, copy=False)
    ok = (corr >= 0) & (corr < (1 << _CORR_BITS)) & (rank >= -1) & (rank < (1 << 20))
    keys = np.where(ok, ((rank + 1) << _CORR_BITS) | np.where(ok, corr, 0), -1)
    return keys, t.column("t_start_ns").to_numpy().astype(np.int64, copy=False)


def _flow_marks(run_dir: Path) -> tuple[Any, Any, Any, Any]:
    """(flow id per GPU row, whether it ends a flow, flow id per runtime row, whether it
    starts one): a launch starts a flow when a GPU event has its (rank, correlation); the
    earliest such GPU event ends it."""
    import numpy as np

    gk, gt = _keys(run_dir / KERNEL_GPU_FILE)
    rk, _ = _keys(run_dir / KERNEL_RUNTIME_FILE)
    linked = np.intersect1d(gk[gk >= 0], rk[rk >= 0])
    idx = np.nonzero((gk >= 0) & np.isin(gk, linked))[0]
    order = idx[np.lexsort((gt[idx], gk[idx]))]
    first = order[np.r_[True, gk[order][1:] != gk[order][:-1]]] if len(order) else order
    g_in = np.zeros(len(gk), dtype=bool)
    g_in[first] = True
    r_out = (rk >= 0) & np.isin(rk, linked)
    return gk, g_in, rk, r_out


@dataclass(frozen=True, slots=True)
class KernelSlices:
    run_dir: Path
    tables: tuple[Path, ...]  # the event tables present, in writing order

    def first_ns(self) -> int | None:
        import pyarrow.compute as pc

        lows = []
        for path in self.tables:
            col = _read(path, ["t_start_ns"]).column("t_start_ns")
            if len(col):
                lows.append(int(pc.min(col).as_py()))
        return min(lows) if lows else None

    def write(self, w: TraceWriter, tracks: Tracks) -> dict[str, int]:
        import pyarrow.parquet as pq

        gk, g_in, rk, r_out = _flow_marks(self.run_dir)
        counts: Counter[str] = Counter()
        made = _TrackCache(tracks)
        for path in self.tables:
            flows = (gk, g_in, "flow_in") if path.name == Path(KERNEL_GPU_FILE).name else \
                (rk, r_out, "flow_out") if path.name == Path(KERNEL_RUNTIME_FILE).name else None
            row = 0
            try:
                for batch in pq.ParquetFile(path).iter_batches(BATCH_ROWS, columns=_COLUMNS):
                    events = _batch_events(w, made, batch, row, flows=flows, counts=counts)
                    w.emit_array(orjson.dumps(events), len(events))
                    row += batch.num_rows
            except RunDirError:
                raise
            except Exception as exc:  # noqa: BLE001 - one line naming the file
                raise RunDirError(f"cannot read {path}: {exc}") from None
        out = {name: counts[k] for k, name in _COUNT_NAMES.items() if counts[k]}
        if made.gpu:
            out["GPU tracks"] = len(made.gpu)
        if made.host:
            out["host thread tracks"] = len(made.host)
        return out


class _TrackCache:
    """The (pid, tid) of each GPU stream / GPU annotation row / host thread, made once."""

    def __init__(self, tracks: Tracks) -> None:
        self.tracks = tracks
        self.gpu: dict[tuple[int, int, int, bool], tuple[int, int]] = {}
        self.host: dict[tuple[int, int, int], tuple[int, int]] = {}

    def on_gpu(self, rank: int, device: int, stream: int, annotation: bool) -> tuple[int, int]:
        key = (rank, device, stream, annotation)
        got = self.gpu.get(key)
        if got is None:
            pid = self.tracks.process(rank_pid(rank, gpu=True), f"GPU rank {rank}")
            tid = (self.tracks.thread(pid, ("annotations", device), f"GPU {device} annotations")
                   if annotation else
                   self.tracks.thread(pid, ("stream", device, stream),
                                      f"GPU {device} stream {stream}"))
            got = self.gpu[key] = (pid, tid)
        return got

    def on_host(self, rank: int, tpid: int, ttid: int) -> tuple[int, int]:
        key = (rank, tpid, ttid)
        got = self.host.get(key)
        if got is None:
            pid = self.tracks.process(rank_pid(rank, gpu=False), f"rank {rank} host")
            got = self.host[key] = (pid, self.tracks.thread(pid, (tpid, ttid),
                                                            f"pid {tpid} thread {ttid}"))
        return got


def _batch_events(w: TraceWriter, made: _TrackCache, batch: Any, row0: int, *,
                  flows: tuple[Any, Any, str] | None, counts: Counter[str]
                  ) -> list[dict[str, Any]]:
    """The events of one parquet batch (times converted column-wise: (t − origin) is exact
    in float64 below 2**53 ns, and the division is correctly rounded, as in Python)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = {c: batch.column(c) for c in _COLUMNS}
    rel = pc.subtract(col["t_start_ns"], pa.scalar(w.origin_ns, pa.int64()))
    ts = pc.divide(pc.cast(rel, pa.float64()), 1000.0).to_pylist()
    dur = pc.divide(pc.cast(col["dur_ns"], pa.float64()), 1000.0).to_pylist()
    names, cats = col["name"].to_pylist(), col["cat"].to_pylist()
    corr, ext = col["correlation_id"].to_pylist(), col["external_id"].to_pylist()
    stream, nbytes = col["stream"].to_pylist(), col["bytes"].to_pylist()
    tpid, ttid = col["pid"].to_pylist(), col["tid"].to_pylist()
    grid, block = col["grid"].to_pylist(), col["block"].to_pylist()
    marks = None
    if flows is not None:
        ids, on, side = flows
        marks = on[row0:row0 + batch.num_rows].tolist()
    events = []
    rows = zip(col["rank"].to_pylist(), col["kind"].to_pylist(), col["device"].to_pylist(),
               strict=True)
    for i, (rank, table_kind, device) in enumerate(rows):
        kind = table_kind
        args: dict[str, Any] = {}
        if corr[i] >= 0:
            args["correlation"] = corr[i]
        if ext[i] >= 0:
            args["external_id"] = ext[i]
        if device >= 0:
            annotation = kind == "annotation"
            kind = "gpu_annotation" if annotation else kind
            pid, tid = made.on_gpu(rank, device, stream[i], annotation)
            args["device"], args["stream"] = device, stream[i]
            if grid[i] is not None:
                args["grid"] = grid[i]
            if block[i] is not None:
                args["block"] = block[i]
            if nbytes[i] >= 0:
                args["bytes"] = nbytes[i]
        else:
            pid, tid = made.on_host(rank, tpid[i], ttid[i])
        event = {"ph": "X", "name": names[i], "cat": cats[i], "pid": pid, "tid": tid,
                 "ts": ts[i], "dur": dur[i], "args": args}
        if marks is not None and marks[i]:
            event["bind_id"] = int(ids[row0 + i])
            event[side] = True
            counts["flows"] += side == "flow_in"
        counts[kind] += 1
        events.append(event)
    return events


def kernel_slices(run_dir: Path) -> tuple[KernelSlices | None, str]:
    """The run's kernel tables, or None and why not ("" when it has none). Tables ingested
    without a clock anchor (``traces.parquet`` clock ``unaligned``) are on the trace's own
    clock, not the run's: they are left out, with the reason."""
    if not (run_dir / KERNELS_DIR).is_dir():
        return None, ""
    tables = tuple(run_dir / name for name in _TABLES if (run_dir / name).is_file())
    if not tables:
        return None, ""
    traces = run_dir / KERNEL_TRACES_FILE
    if traces.is_file():
        t = _read(traces, ["file", "clock", "events_kept"]).to_pylist()
        loose = [r["file"] for r in t if r["clock"] == "unaligned" and r["events_kept"]]
        if loose:
            return None, (f"kernel traces left out: {', '.join(loose)} not on the run's "
                          "clock (ingested without a clock anchor)")
    return KernelSlices(run_dir, tables), ""
