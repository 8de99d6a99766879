"""On a real NVIDIA GPU (Hopper or newer for GPM): the GPU collector, in its own child
process, watches this test's torch process through a copy loop (bandwidth-bound) and then a
bf16 GEMM loop (compute-bound). DRAM bandwidth and tensor activity must move in opposite
directions, and the sampling must reach ≥ 10 Hz in real spacing.

``pytest -m gpu tests/gpu`` (skips cleanly without torch, CUDA or nvidia-ml-py). It prints
what it measured.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any

import pytest

pytestmark = pytest.mark.gpu

PHASE_S = 3.0
MARGIN_NS = 300_000_000  # windows this close to a switch are left out


def _torch() -> Any:
    torch = pytest.importorskip("torch")
    pytest.importorskip("pynvml")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch


def _loop(torch, body, seconds: float) -> tuple[int, int]:
    """Run ``body`` until ``seconds`` passed; (start, end) on the monotonic clock."""
    body()
    torch.cuda.synchronize()
    t0 = time.monotonic_ns()
    while time.monotonic_ns() - t0 < seconds * 1e9:
        for _ in range(5):
            body()
        torch.cuda.synchronize()
    return t0, time.monotonic_ns()


def _inside(gpm, metric: str, span: tuple[int, int]) -> list[float]:
    lo, hi = span[0] + MARGIN_NS, span[1] - MARGIN_NS
    return [r.value for r in gpm.itertuples()
            if r.metric == metric and r.t_start_ns >= lo and r.t_end_ns <= hi]


def test_copy_and_gemm_move_dram_bandwidth_and_tensor_activity_apart(tmp_path):
    torch = _torch()
    import pandas as pd

    from collectors.base import CollectContext, EngineFacts
    from collectors.child import ChildRunner
    from collectors.gpu.collector import GpuCollector
    from servescope.clock import take_anchor

    dev = torch.device("cuda")
    a = torch.empty(2 << 30, dtype=torch.uint8, device=dev)
    b = torch.empty_like(a)
    x = torch.randn(8192, 8192, dtype=torch.bfloat16, device=dev)
    y = torch.randn_like(x)
    torch.cuda.synchronize()  # this process now holds a context: the GPU is found by pid

    ctx = CollectContext(tmp_path, "", EngineFacts("test", pid=os.getpid()), take_anchor(),
                         options={"gpu": {"interval_s": 0.1}})
    collector = GpuCollector()
    assert collector.skip_reason(ctx) == ""
    runner = ChildRunner(collector, ctx)
    assert runner.start(), runner.error
    try:
        time.sleep(0.5)
        copy = _loop(torch, lambda: b.copy_(a), PHASE_S)
        gemm = _loop(torch, lambda: x @ y, PHASE_S)
        live = collector.live_values()
    finally:
        stats = runner.stop()
    assert runner.error == "", runner.error

    samples = pd.read_parquet(tmp_path / "gpu/samples.parquet")
    gpm = pd.read_parquet(tmp_path / "gpu/gpm.parquet")
    devices = json.loads((tmp_path / "gpu/devices.json").read_text())
    me = devices[0]["gpu_index"]
    spacing_ms = samples[samples["gpu_index"] == me]["t_ns"].diff().dropna() / 1e6
    gpm = gpm[gpm["gpu_index"] == me]
    found = {
        phase: {m: statistics.median(_inside(gpm, m, span) or [float("nan")])
                for m in ("dram_bw_util", "any_tensor_util", "sm_util", "sm_occupancy")}
        for phase, span in (("copy", copy), ("gemm", gemm))}
    print(f"\ndevice: {devices[0]['name']} peak {devices[0]['peak_dram_bytes_per_s'] / 1e12:.2f}"
          f" TB/s, why: {devices[0]['why_watched']}, unsupported: {devices[0]['unsupported']}")
    print(f"sampling: {len(samples)} samples, median spacing {spacing_ms.median():.2f} ms, "
          f"p99 {spacing_ms.quantile(0.99):.2f} ms, max {spacing_ms.max():.2f} ms; "
          f"counts {json.dumps(stats.counts)}; child CPU {stats.process_cpu_ns / 1e9:.2f} s")
    print(f"GPM medians (%): {json.dumps(found)}; live at the end: {json.dumps(live)}")
    mine = samples[samples["gpu_index"] == me]
    energy = mine.dropna(subset=["energy_mj"])
    in_gemm = energy[(energy["t_ns"] >= gemm[0] + MARGIN_NS) & (energy["t_ns"] <= gemm[1])]
    joules = (in_gemm["energy_mj"].iloc[-1] - in_gemm["energy_mj"].iloc[0]) / 1e3
    seconds = (in_gemm["t_ns"].iloc[-1] - in_gemm["t_ns"].iloc[0]) / 1e9
    nvml_w = mine[(mine["t_ns"] >= gemm[0] + 1e9) & (mine["t_ns"] <= gemm[1])]["power_w"]
    print(f"GEMM phase: energy counter {joules / seconds:.0f} W over {seconds:.2f} s; "
          f"NVML power median {nvml_w.median():.0f} W; {len(energy)} energy readings")

    assert devices[0]["why_watched"] == f"engine process {os.getpid()}"
    assert spacing_ms.median() <= 105  # ≥ ~10 Hz, real spacing
    assert len(samples[samples["gpu_index"] == me]) >= 10 * (2 * PHASE_S) * 0.9
    assert stats.counts["errors"] == 0, stats.error
    assert energy["energy_mj"].is_monotonic_increasing
    assert joules / seconds == pytest.approx(nvml_w.median(), rel=0.3)  # same power, two ways
    if not devices[0]["gpm_supported"]:
        pytest.skip("GPM needs Hopper or newer; NVML sampling was checked")
    c, g = found["copy"], found["gemm"]
    assert c["dram_bw_util"] > 50  # bandwidth-bound: HBM busy (H200 probe: 87 %)
    assert c["any_tensor_util"] < 5  # ... and no tensor work
    assert g["any_tensor_util"] > 50  # compute-bound: tensor pipes busy (probe: 92 %)
    assert g["dram_bw_util"] < c["dram_bw_util"] / 2  # ... and HBM much less (probe: 17 %)
    assert live["gpu_tensor_frac"] > 0.5  # the live view saw the GEMM phase
