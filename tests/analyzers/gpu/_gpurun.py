"""GPU and stack files written into a run directory in exactly the collectors' schema
(servescope/records/gpu.py and stacks.py: column names = the dataclass fields), from rows
the test chooses."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from servescope.records.gpu import GpmSample, GpuDeviceFacts, GpuSample
from servescope.records.stacks import HangDump, HotFrame, StackProcess, StackThread
from servescope.rundir.layout import (
    GPM_FILE,
    GPU_DEVICES_FILE,
    GPU_SAMPLES_FILE,
    HANGS_FILE,
    STACK_HOT_FILE,
    STACK_PROCESSES_FILE,
    STACK_THREADS_FILE,
)

H200_MEM = 150_754_820_096


def h200(index: int = 0, **kw: Any) -> GpuDeviceFacts:
    base: dict[str, Any] = dict(
        gpu_index=index, gpu_uuid=f"GPU-{index}", name="NVIDIA H200", arch=9,
        memory_total_bytes=H200_MEM, max_sm_clock_mhz=1980, max_mem_clock_mhz=3201,
        mem_bus_width_bits=6144, peak_dram_bytes_per_s=4.8e12, power_limit_w=700.0,
        gpm_supported=True, mig_gpu_instances=(), why_watched="engine process 1",
        unsupported=())
    base.update(kw)
    return GpuDeviceFacts(**base)


def sample(t_ns: int, index: int = 0, **kw: Any) -> GpuSample:
    base: dict[str, Any] = dict(
        t_ns=t_ns, gpu_index=index, gpu_uuid=f"GPU-{index}", mig_gpu_instance=None,
        util_gpu_frac=0.5, util_mem_frac=0.1, mem_used_bytes=10 * 2**30,
        mem_total_bytes=H200_MEM, power_w=300.0, energy_mj=0, sm_clock_mhz=1980,
        mem_clock_mhz=3201, clock_event_reasons=0, temp_c=40, pcie_tx_bytes_per_s=None,
        pcie_rx_bytes_per_s=None, nvlink_tx_bytes_total=None, nvlink_rx_bytes_total=None)
    base.update(kw)
    return GpuSample(**base)


def gpm_rows(t0_ns: int, t1_ns: int, index: int = 0, **metrics: float) -> list[GpmSample]:
    ids = {"sm_util": 2, "sm_occupancy": 3, "dram_bw_util": 10, "any_tensor_util": 5}
    return [GpmSample(t0_ns, t1_ns, index, None, ids.get(m, 99), m, float(v))
            for m, v in metrics.items()]


def _parquet(path: Path, rows: Sequence[Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([dataclasses.asdict(r) for r in rows]), path)


def write_gpu(run_dir: Path, devices: Sequence[GpuDeviceFacts], samples: Sequence[GpuSample],
              gpm: Sequence[GpmSample] = ()) -> None:
    (run_dir / "gpu").mkdir(parents=True, exist_ok=True)
    (run_dir / GPU_DEVICES_FILE).write_text(json.dumps([dataclasses.asdict(d)
                                                        for d in devices]))
    if samples:
        _parquet(run_dir / GPU_SAMPLES_FILE, samples)
    if gpm:
        _parquet(run_dir / GPM_FILE, gpm)


def write_stacks(run_dir: Path, processes: Sequence[StackProcess],
                 threads: Sequence[StackThread], hot: Sequence[HotFrame],
                 hangs: Sequence[HangDump] = ()) -> None:
    (run_dir / "stacks").mkdir(parents=True, exist_ok=True)
    (run_dir / STACK_PROCESSES_FILE).write_text(json.dumps([dataclasses.asdict(p)
                                                            for p in processes]))
    _parquet(run_dir / STACK_THREADS_FILE, threads)
    _parquet(run_dir / STACK_HOT_FILE, hot)
    if hangs:
        (run_dir / HANGS_FILE).write_text(json.dumps([dataclasses.asdict(h) for h in hangs]))
