"""The kernel-trace tables (``RUN/kernels/``, already on the run's clock at ingestion) as
slices: GPU kernels, memcpy and memset on one track per (rank, device, stream), GPU-side
annotations on one per (rank, device), runtime calls, CPU ops and step annotations on one per
(rank, trace pid, trace tid); and an arrow from each launch to the first GPU event that
carries its correlation id (Chrome's flow v2: ``bind_id`` with ``flow_out``/``flow_in``).

The tables are read one parquet batch at a time (65 536 rows, only the columns used), each
row written as it is made: memory holds one batch and two bytes-per-row masks for the flows,
never every event.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

BATCH_ROWS = 65_536
# outer before inner: Perfetto nests slices of one thread that start together in file order
_TABLES = (KERNEL_ANNOTATIONS_FILE, KERNEL_CPU_OPS_FILE, KERNEL_RUNTIME_FILE, KERNEL_GPU_FILE)
_COLUMNS = ["rank", "kind", "name", "cat", "t_start_ns", "dur_ns", "device", "stream",
            "correlation_id", "pid", "tid", "external_id", "bytes", "grid", "block"]
_CORR_BITS = 32
_COUNT_NAMES = {"kernel": "GPU kernel slices", "memcpy": "memcpy slices",
                "memset": "memset slices", "runtime": "runtime call slices",
                "cpu_op": "CPU op slices"}


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
    rank = t.column("rank").to_numpy().astype(np.int64)
    corr = t.column("correlation_id").to_numpy().astype(np.int64)
    ok = (corr >= 0) & (corr < (1 << _CORR_BITS)) & (rank >= -1) & (rank < (1 << 20))
    keys = np.where(ok, ((rank + 1) << _CORR_BITS) | np.where(ok, corr, 0), -1)
    return keys, t.column("t_start_ns").to_numpy().astype(np.int64)


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
        gpu_tracks: set[int] = set()
        host_tracks: set[int] = set()
        for path in self.tables:
            is_gpu, is_rt = path.name == Path(KERNEL_GPU_FILE).name, \
                path.name == Path(KERNEL_RUNTIME_FILE).name
            row = 0
            try:
                batches = pq.ParquetFile(path).iter_batches(BATCH_ROWS, columns=_COLUMNS)
                for batch in batches:
                    cols = {c: batch.column(c).to_pylist() for c in _COLUMNS}
                    for i in range(batch.num_rows):
                        flow = None
                        if is_gpu and g_in[row + i]:
                            flow = {"bind_id": int(gk[row + i]), "flow_in": True}
                        elif is_rt and r_out[row + i]:
                            flow = {"bind_id": int(rk[row + i]), "flow_out": True}
                        kind, tid, on_gpu = self._event(w, tracks, cols, i, flow)
                        (gpu_tracks if on_gpu else host_tracks).add(tid)
                        counts[kind] += 1
                        counts["flows"] += bool(flow and "flow_in" in flow)
                    row += batch.num_rows
            except RunDirError:
                raise
            except Exception as exc:  # noqa: BLE001 - one line naming the file
                raise RunDirError(f"cannot read {path}: {exc}") from None
        out = {name: counts[k] for k, name in _COUNT_NAMES.items() if counts[k]}
        if counts["gpu_annotation"]:
            out["GPU annotation slices"] = counts["gpu_annotation"]
        if counts["annotation"]:
            out["step annotation slices"] = counts["annotation"]
        if counts["flows"]:
            out["launch→GPU flows"] = counts["flows"]
        if gpu_tracks:
            out["GPU tracks"] = len(gpu_tracks)
        if host_tracks:
            out["host thread tracks"] = len(host_tracks)
        return out

    @staticmethod
    def _event(w: TraceWriter, tracks: Tracks, cols: dict[str, list[Any]], i: int,
               flow: dict[str, Any] | None) -> tuple[str, int, bool]:
        rank, kind, device = cols["rank"][i], cols["kind"][i], cols["device"][i]
        args: dict[str, Any] = {}
        corr, ext = cols["correlation_id"][i], cols["external_id"][i]
        if corr >= 0:
            args["correlation"] = corr
        if ext >= 0:
            args["external_id"] = ext
        on_gpu = device >= 0
        if on_gpu:
            pid = tracks.process(rank_pid(rank, gpu=True), f"GPU rank {rank}")
            stream = cols["stream"][i]
            if kind == "annotation":
                kind = "gpu_annotation"
                tid = tracks.thread(pid, ("annotations", device), f"GPU {device} annotations")
            else:
                tid = tracks.thread(pid, ("stream", device, stream),
                                    f"GPU {device} stream {stream}")
            args["device"], args["stream"] = device, stream
            for key in ("grid", "block"):
                if cols[key][i] is not None:
                    args[key] = cols[key][i]
            if cols["bytes"][i] >= 0:
                args["bytes"] = cols["bytes"][i]
        else:
            pid = tracks.process(rank_pid(rank, gpu=False), f"rank {rank} host")
            tpid, ttid = cols["pid"][i], cols["tid"][i]
            tid = tracks.thread(pid, (tpid, ttid), f"pid {tpid} thread {ttid}")
        event: dict[str, Any] = {"ph": "X", "name": cols["name"][i], "cat": cols["cat"][i],
                                 "pid": pid, "tid": tid, "ts": w.us(cols["t_start_ns"][i]),
                                 "dur": cols["dur_ns"][i] / 1000, "args": args}
        if flow is not None:
            event.update(flow)
        w.emit(event)
        return kind, tid, on_gpu


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
