"""The GPU collector's whole life in its own child process (ChildRunner), into a run dir."""

from __future__ import annotations

import json
import os
import time

import pandas as pd
import pytest

from collectors.child import ChildRunner
from collectors.gpu.collector import GpuCollector
from servescope.rundir.layout import (
    GPM_FILE,
    GPU_DEVICES_FILE,
    GPU_PROCESSES_FILE,
    GPU_SAMPLES_FILE,
)
from tests.collectors.gpu._support import context
from tests.fakes.nvml import PROBE, FakeNvmlConfig, FakeNvmlProvider


def test_child_samples_writes_the_tables_and_shares_live_values(tmp_path):
    cfg = FakeNvmlConfig(phases=(("idle", 0.3), ("copy", 1e9)),
                         procs=((0, os.getpid(), 3 << 30),))
    collector = GpuCollector(nvml=FakeNvmlProvider(cfg))
    assert collector.live_values() == {}
    runner = ChildRunner(collector, context(tmp_path, pid=os.getpid()))
    assert runner.start(), runner.error
    assert runner.pid != os.getpid()
    time.sleep(1.5)
    live = collector.live_values()  # read here, written by the child
    stats = runner.stop()
    assert runner.error == ""
    copy = PROBE["gpm"]["copy"]
    assert live["gpu_dram_bw_frac"] == pytest.approx(copy["DRAM_BW_UTIL"] / 100)
    assert live["gpu_sm_util_frac"] == pytest.approx(copy["SM_UTIL"] / 100)
    assert live["gpu_tensor_frac"] == 0.0
    assert live["gpu_util_frac"] == 0.99
    assert live["gpu_power_w"] == 402.05
    assert live["gpu_mem_used_bytes"] == PROBE["nvml"]["mem"]["v"]["used"] + (3 << 30)
    samples = pd.read_parquet(tmp_path / GPU_SAMPLES_FILE)
    gpm = pd.read_parquet(tmp_path / GPM_FILE)
    procs = pd.read_parquet(tmp_path / GPU_PROCESSES_FILE)
    devices = json.loads((tmp_path / GPU_DEVICES_FILE).read_text())
    c = stats.counts
    assert c["samples"] == len(samples) >= 10
    assert c["gpm_rows"] == len(gpm) > 0
    assert c["process_rows"] == len(procs) >= 1
    assert c["gpus"] == len(devices) == 1
    assert 90 <= c["period_ms_median"] <= 110
    assert stats.process_cpu_ns > 0
    assert not (tmp_path / "gpu" / "journal.jsonl").exists()  # finalized
    assert list(samples.columns)[:4] == ["t_ns", "gpu_index", "gpu_uuid", "mig_gpu_instance"]
    assert devices[0]["why_watched"] == f"engine process {os.getpid()}"


def test_a_child_whose_nvml_init_fails_did_not_start(tmp_path):
    collector = GpuCollector(nvml=FakeNvmlProvider(FakeNvmlConfig(no_driver=True)))
    runner = ChildRunner(collector, context(tmp_path))
    assert not runner.start()
    assert runner.error.startswith("NVMLError"), runner.error
    assert runner.stop().counts["samples"] == 0
