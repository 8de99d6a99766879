"""A bench run's bandwidth, as compare and gate read it (kernels_bench writes the tables).

One metric per benchmark, ``bw_<bench>`` (``bw_hbm_copy``, ``bw_all_reduce``, ...), in bytes
per second, higher is better: the bench's **headline**, its largest measured size and, at that
size, the implementation with the highest median; busbw for collectives (nccl-tests' figure
meant for comparison across rank counts), bytes moved / time otherwise. Its samples are the
per-repeat bandwidths behind that median (``bench/repeats.parquet``), which compare resamples
for the CI of the median's change and rank-tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from servescope.rundir.layout import BENCH_BANDWIDTH_FILE, BENCH_REPEATS_FILE, RunDirError

if TYPE_CHECKING:
    import pandas as pd

    from analyzers.timeline import FloatArray

__all__ = ["BANDWIDTH_BENCHES", "Headline", "bandwidth_samples", "headlines", "read_bandwidth"]

BANDWIDTH_BENCHES = (
    "host_read", "host_write", "host_copy", "host_triad",
    "hbm_read", "hbm_write", "hbm_copy", "hbm_triad", "kv_gather",
    "p2p_copy", "p2p_copy_bidir",
    "all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast", "reduce",
    "send_recv", "tp_decode_all_reduce", "ib_write", "ib_read",
)


@dataclass(frozen=True, slots=True)
class Headline:
    bench: str
    implementation: str
    size_bytes: int
    bytes_per_s: float  # busbw for collectives
    bus: bool


def read_bandwidth(run_dir: str | Path) -> pd.DataFrame | None:
    """``bench/bandwidth.parquet`` (None: not a bench run). RunDirError when unreadable."""
    path = Path(run_dir) / BENCH_BANDWIDTH_FILE
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    try:
        frame: pd.DataFrame = pq.read_table(path).to_pandas()
    except Exception as exc:
        raise RunDirError(f"cannot read {path}: {exc}") from exc
    return frame


def headlines(table: pd.DataFrame) -> dict[str, Headline]:
    """The headline row of each bench (see the module doc)."""
    out: dict[str, Headline] = {}
    for bench, g in table.groupby("bench", sort=False):
        top = g[g["size_bytes"] == g["size_bytes"].max()]
        bus = top["bus_bytes_per_s"].notna().all()
        col = "bus_bytes_per_s" if bus else "bytes_per_s"
        row = top.loc[top[col].idxmax()]
        out[str(bench)] = Headline(str(bench), str(row["implementation"]),
                                   int(row["size_bytes"]), float(row[col]), bool(bus))
    return out


def bandwidth_samples(run_dir: str | Path) -> dict[str, FloatArray]:
    """``bw_<bench>`` -> the per-repeat bandwidths (bytes/s) of each bench's headline; empty
    for a run that is not a bench run."""
    table = read_bandwidth(run_dir)
    if table is None or table.empty:
        return {}
    import numpy as np
    import pyarrow.parquet as pq

    path = Path(run_dir) / BENCH_REPEATS_FILE
    try:
        reps = pq.read_table(path).to_pandas()
    except Exception as exc:
        raise RunDirError(f"cannot read {path}: {exc}") from exc
    out: dict[str, FloatArray] = {}
    for bench, h in headlines(table).items():
        row = table[(table["bench"] == bench) & (table["implementation"] == h.implementation)
                    & (table["size_bytes"] == h.size_bytes)].iloc[0]
        ratio = (float(row["bus_bytes_per_s"]) / float(row["bytes_per_s"])
                 if h.bus and row["bytes_per_s"] > 0 else 1.0)
        t = reps[(reps["bench"] == bench) & (reps["implementation"] == h.implementation)
                 & (reps["size_bytes"] == h.size_bytes)]["time_ns"].to_numpy(np.float64)
        out[f"bw_{bench}"] = float(row["moved_bytes"]) / (t / 1e9) * ratio
    return out
