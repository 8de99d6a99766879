"""A run with GPU telemetry and engine stacks, written in the collectors' schema
(servescope/records/gpu.py, stacks.py) with chosen values, for the report's tests.

40 requests 50 ms apart (the load spans about 2 s). The GPU is sampled every ``PERIOD_MS``
from 200 ms before the first send to 200 ms after the last end, in two phases split at
``SPLIT_MS``; GPM windows are the same ``PERIOD_MS`` long. In phase 2 a software power cap
(0x4) is set from ``CAP_MS[0]`` to ``CAP_MS[1]``; the idle bit (0x1) is set in phase 1
(not a throttle). Stacks: two processes, a hot function and a thread with hostile names.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from servescope.records.gpu import GpmSample, GpuDeviceFacts, GpuProcessSample, GpuSample
from servescope.records.stacks import HangDump, HotFrame, StackProcess, StackThread
from servescope.rundir.layout import (
    GPM_FILE,
    GPU_DEVICES_FILE,
    GPU_PROCESSES_FILE,
    GPU_SAMPLES_FILE,
    HANGS_FILE,
    STACK_HOT_FILE,
    STACK_PROCESSES_FILE,
    STACK_THREADS_FILE,
    STACKS_DIR,
)
from servescope.rundir.reader import RunData
from tests.analyzers._gate_runs import synthetic_run
from tests.analyzers._rundir import T0

N = 40
GAP_MS = 50.0
PERIOD_MS = 10.0
SPLIT_MS = 1000.0
CAP_MS = (1200.0, 1600.0)
PEAK_BYTES_PER_S = 4.8e12
MAX_SM_MHZ = 1980
# phase 1, phase 2 (GPU 0; GPU 1 has half the SM busy and tensor values)
SM_UTIL = (20.0, 80.0)
SM_OCC = (10.0, 50.0)
DRAM_UTIL = (30.0, 85.0)
TENSOR = (5.0, 60.0)
NVML_UTIL = (0.9, 1.0)
POWER_W = (300.0, 690.0)
SM_MHZ = (1980, 1500)
MEM_GIB = (40.0, 60.0)

HOSTILE = "<script>alert(1)</script>"
HOT_FUNCTION = "execute_model"
HOSTILE_FUNCTION = "<img src=x onerror=alert(5)>"
HANG_TEXT = "Thread 0x7f (idle): \"MainThread\"\n    wait (threading.py:320)\n"


def _ns(t_ms: float | np.ndarray) -> np.ndarray:
    return T0 + np.round(np.asarray(t_ms, dtype=np.float64) * 1e6).astype(np.int64)


def _frame(rows: Sequence[object]) -> pd.DataFrame:
    return pd.DataFrame([dataclasses.asdict(r) for r in rows])  # type: ignore[call-overload]


def sample_times_ms() -> np.ndarray:
    return np.arange(-200.0, N * GAP_MS + 200.0, PERIOD_MS)


def _phase(t_ms: float) -> int:
    return int(t_ms >= SPLIT_MS)


def write_gpu(run_dir: Path, gpus: int = 1) -> None:
    """``gpu/`` files of ``gpus`` H200-like GPUs with the two phases above."""
    (run_dir / "gpu").mkdir(exist_ok=True)
    devices = [GpuDeviceFacts(i, f"GPU-{i}", "NVIDIA H200", 9, 141 * 2**30, MAX_SM_MHZ, 2619,
                              6144, PEAK_BYTES_PER_S, 700.0, True, (), "engine process 1",
                              ("nvlink",)) for i in range(gpus)]
    (run_dir / GPU_DEVICES_FILE).write_text(json.dumps(
        [dataclasses.asdict(d) for d in devices]))
    samples, gpm, procs = [], [], []
    for g in range(gpus):
        half = 0.5 if g else 1.0
        energy = 0.0
        for t in sample_times_ms():
            ph = _phase(t)
            capped = CAP_MS[0] <= t < CAP_MS[1]
            reasons = 0x4 if capped else (0x1 if ph == 0 else 0)
            energy += POWER_W[ph] * PERIOD_MS  # mJ
            samples.append(GpuSample(int(_ns(t)), g, f"GPU-{g}", None, NVML_UTIL[ph], 0.5,
                                     int(MEM_GIB[ph] * 2**30), 141 * 2**30, POWER_W[ph],
                                     int(energy), SM_MHZ[ph], 2619, reasons, 60, None, None,
                                     None, None))
            procs.append(GpuProcessSample(int(_ns(t)), g, 1234, int(MEM_GIB[ph] * 2**30)))
            for mid, name, vals, k in ((2, "sm_util", SM_UTIL, half),
                                       (3, "sm_occupancy", SM_OCC, 1.0),
                                       (10, "dram_bw_util", DRAM_UTIL, 1.0),
                                       (5, "any_tensor_util", TENSOR, half)):
                gpm.append(GpmSample(int(_ns(t)), int(_ns(t + PERIOD_MS)), g, None, mid, name,
                                     vals[ph] * k))
    _frame(samples).to_parquet(run_dir / GPU_SAMPLES_FILE)
    _frame(gpm).to_parquet(run_dir / GPM_FILE)
    _frame(procs).to_parquet(run_dir / GPU_PROCESSES_FILE)


def write_stacks(run_dir: Path) -> None:
    """``stacks/`` files: an engine core with a hot ``execute_model`` on a thread named
    :data:`HOSTILE`, an API server, a hostile function name, and one hang dump."""
    (run_dir / STACKS_DIR / "hang-1").mkdir(parents=True, exist_ok=True)
    t0, t1 = int(_ns(0.0)), int(_ns(N * GAP_MS))
    procs = [StackProcess(1234, "engine_core", "VLLM::EngineCore",
                          "stacks/engine_core-1234.speedscope.json", 400, t0, t1, ""),
             StackProcess(1200, "api_server", f"vllm serve {HOSTILE}",
                          "stacks/api_server-1200.speedscope.json", 380, t0, t1, "")]
    (run_dir / STACK_PROCESSES_FILE).write_text(json.dumps(
        [dataclasses.asdict(p) for p in procs]))
    for p in procs:
        (run_dir / p.speedscope_file).write_text(json.dumps({
            "$schema": "https://www.speedscope.app/file-format-schema.json",
            "shared": {"frames": []}, "profiles": []}))
    threads = [StackThread(1234, "engine_core", 1234, HOSTILE, 392, 0.98),
               StackThread(1234, "engine_core", 1240, "Thread-2", 20, 0.05),
               StackThread(1200, "api_server", 1200, "MainThread", 150, 0.39)]
    _frame(threads).to_parquet(run_dir / STACK_THREADS_FILE)
    hot = [HotFrame(1234, "engine_core", 1234, HOSTILE, HOT_FUNCTION,
                    "vllm/v1/worker/gpu_model_runner.py", 1500, 250, 380, 250 / 392, 380 / 392),
           HotFrame(1234, "engine_core", 1234, HOSTILE, HOSTILE_FUNCTION, f"/x/{HOSTILE}.py",
                    7, 100, 120, 100 / 392, 120 / 392),
           HotFrame(1200, "api_server", 1200, "MainThread", "run_forever",
                    "asyncio/base_events.py", 640, 90, 150, 0.6, 1.0)]
    _frame(hot).to_parquet(run_dir / STACK_HOT_FILE)
    dump = "stacks/hang-1/engine_core-1234.txt"
    (run_dir / dump).write_text(HANG_TEXT)
    (run_dir / HANGS_FILE).write_text(json.dumps([dataclasses.asdict(HangDump(
        int(_ns(1500.0)), 12.5, 8, (dump,), ()))]))


def gpu_run(root: Path, name: str = "gpu", *, gpus: int = 1, stacks: bool = True) -> RunData:
    """The run described above."""
    ttft = 20.0 + (np.arange(N) % 7) * 3.0
    run = synthetic_run(root, name, ttft, 5.0, tokens=8, gap_ms=GAP_MS)
    write_gpu(run.path, gpus)
    if stacks:
        write_stacks(run.path)
    return run
