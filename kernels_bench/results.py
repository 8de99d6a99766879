"""Samples from timed repeats, and a bench run written as a run directory.

A bench run directory has the standard ``manifest.json`` (status ``complete``, the host
fingerprint and GPU inventory of any run, ``workload = {"kind": "bench", "bench": ...}``)
and ``bench/`` tables (servescope.rundir.layout ``BENCH_*``): so ``servescope compare`` and
``gate`` read it like any run (analyzers/bandwidth.py) and a serving run on the same host can
show the host's baseline.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kernels_bench.peaks import DevicePeaks
from kernels_bench.timing import repeat_stats
from servescope.records.bandwidth import BandwidthSample

__all__ = ["BenchRun", "make_sample", "write_bench_run"]


@dataclass(slots=True)
class BenchRun:
    """What one ``servescope bench`` command measured: samples, every repeat's time, and the
    environment (peaks, topology, NCCL transport lines, settings)."""

    bench: str  # hbm, host, p2p, collectives, net
    samples: list[BandwidthSample] = field(default_factory=list)
    repeats: list[tuple[str, str, int, int, int]] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, sample: BandwidthSample, times_ns: Sequence[int]) -> None:
        self.samples.append(sample)
        self.repeats.extend((sample.bench, sample.implementation, sample.size_bytes, i, t)
                            for i, t in enumerate(times_ns))


def make_sample(bench: str, implementation: str, *, size_bytes: int, moved_bytes: int,
                times_ns: Sequence[int], peaks: DevicePeaks | None, dtype: str,
                bus_factor: float | None = None, ranks: int = 1, transport: str = "",
                device: str | None = None, nvlink: bool = False) -> BandwidthSample:
    """A sample from the timed repeats: median time, bytes/s = moved / median, busbw =
    bytes/s x ``bus_factor`` (collectives). ``nvlink``: measure against the datasheet's
    NVLink peak rather than the memory's (p2p and collectives)."""
    st = repeat_stats(times_ns)
    bps = moved_bytes / (st.median_ns / 1e9) if st.median_ns > 0 else float("nan")
    nvml = ds = None
    src = ""
    if peaks is not None:
        row = peaks.datasheet
        if nvlink:
            ds = row.nvlink_bytes_per_s if row else None
        else:
            nvml = peaks.nvml_bytes_per_s
            ds = row.hbm_bytes_per_s if row else None
        src = row.source if row is not None and ds is not None else ""
    return BandwidthSample(
        bench=bench, implementation=implementation, size_bytes=size_bytes,
        moved_bytes=moved_bytes, time_ns=st.median_ns, time_p10_ns=st.p10_ns,
        time_p90_ns=st.p90_ns, time_spread_frac=st.spread_frac, repeats=len(times_ns),
        bytes_per_s=bps, bus_bytes_per_s=bps * bus_factor if bus_factor is not None else None,
        peak_nvml_bytes_per_s=nvml, peak_datasheet_bytes_per_s=ds, peak_datasheet_source=src,
        device=device if device is not None else (peaks.name if peaks else "cpu"),
        dtype=dtype, ranks=ranks, transport=transport)


def write_bench_run(out: Path, run: BenchRun, *, command_line: Sequence[str],
                    settings: dict[str, Any]) -> Path:
    """Write ``run`` as the run directory ``out`` (created; must not hold a manifest)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from servescope.clock import take_anchor
    from servescope.jsonio import dumps
    from servescope.rundir.atomic import atomic_write
    from servescope.rundir.layout import (
        BENCH_BANDWIDTH_FILE,
        BENCH_DIR,
        BENCH_ENVIRONMENT_FILE,
        BENCH_REPEATS_FILE,
        MANIFEST_FILE,
        RunDirError,
    )
    from servescope.rundir.manifest import (
        Manifest,
        gpu_inventory,
        host_fingerprint,
        write_manifest,
    )

    if (out / MANIFEST_FILE).exists():
        raise RunDirError(f"{out} already holds a run; choose another --out")
    if not run.samples:
        raise RunDirError("nothing was measured: no run directory written")
    try:
        (out / BENCH_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create {out}: {exc}") from exc
    anchor = take_anchor()
    rows = [asdict(s) for s in run.samples]
    pq.write_table(pa.Table.from_pylist(rows, schema=_sample_schema()), out / BENCH_BANDWIDTH_FILE)
    cols = list(zip(*run.repeats, strict=True))
    pq.write_table(pa.table({
        "bench": pa.array(cols[0], pa.string()), "implementation": pa.array(cols[1], pa.string()),
        "size_bytes": pa.array(cols[2], pa.int64()), "repeat": pa.array(cols[3], pa.int32()),
        "time_ns": pa.array(cols[4], pa.int64())}), out / BENCH_REPEATS_FILE)
    atomic_write(out / BENCH_ENVIRONMENT_FILE,
                 dumps({"bench": run.bench, "settings": settings, **run.environment},
                       indent=True))
    devices = sorted({s.device for s in run.samples})
    manifest = Manifest(
        run_id=out.name, started_wall_ns=anchor.wall_ns, clock=anchor, host=host_fingerprint(),
        command_line=list(command_line), workload={"kind": "bench", "bench": run.bench,
                                                   **settings},
        seed=0, target={"kind": "bench", "devices": devices}, status="complete",
        ended_wall_ns=time.time_ns(), warnings=list(run.warnings), gpus=gpu_inventory())
    write_manifest(out, manifest)
    return out


def _sample_schema() -> Any:
    import pyarrow as pa

    f64, i64, s = pa.float64(), pa.int64(), pa.string()
    return pa.schema([
        ("bench", s), ("implementation", s), ("size_bytes", i64), ("moved_bytes", i64),
        ("time_ns", i64), ("time_p10_ns", i64), ("time_p90_ns", i64),
        ("time_spread_frac", f64), ("repeats", pa.int32()), ("bytes_per_s", f64),
        ("bus_bytes_per_s", f64), ("peak_nvml_bytes_per_s", f64),
        ("peak_datasheet_bytes_per_s", f64), ("peak_datasheet_source", s), ("device", s),
        ("dtype", s), ("ranks", pa.int32()), ("transport", s)])
