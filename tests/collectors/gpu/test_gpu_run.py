"""``servescope run --collect gpu -- <fake engine>`` in this process, with the fake H200.

The fake NVML reaches the run through the collector registry the command takes
(``EngineOptions(registry=…)``, as tests/profiler/test_cli.py does for its probe), not through
an environment variable: the real registry and the real CLI are left alone.
"""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest

pytestmark = pytest.mark.timeout(120)


def test_run_with_the_gpu_collector_writes_its_files_and_counts(tmp_path):
    from collectors.gpu.collector import GpuCollector
    from collectors.registry import CollectorEntry
    from profiler.cli_workload import WorkloadOptions
    from profiler.commands_run import run_command
    from profiler.engine_run import EngineOptions
    from servescope.registry import Registry
    from tests.collectors._server import free_port
    from tests.fakes.nvml import FakeNvmlConfig, FakeNvmlProvider

    fake = FakeNvmlProvider(FakeNvmlConfig(phases=(("copy", 1e9),)))
    reg = Registry("collector", [("gpu", CollectorEntry(
        "gpu", "the fake H200", lambda: GpuCollector(nvml=fake)))])
    port, out = free_port(), tmp_path / "run"
    engine = [sys.executable, "-m", "tests.faults.fake_engine", "--port", str(port)]
    code = run_command(engine, WorkloadOptions(requests=20, concurrency=2, input_len="fixed:8",
                                               output_len="fixed:16"),
                       EngineOptions(engine="openai", url=f"http://127.0.0.1:{port}",
                                     collect="gpu", registry=reg, ready_timeout_s=60,
                                     stop_grace_s=(5.0, 3.0, 2.0)),
                       out, ["run", "--collect", "gpu"])
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["collectors"]["gpu"]
    samples = pd.read_parquet(out / "gpu" / "samples.parquet")
    assert counts["samples"] == len(samples) >= 1
    assert counts["gpus"] == 1
    assert counts["process_cpu_ns"] > 0
    assert counts["unsupported_fields"] == ["nvlink_rx_bytes", "nvlink_tx_bytes"]
    assert (out / "gpu" / "gpm.parquet").is_file()
    devices = json.loads((out / "gpu" / "devices.json").read_text())
    assert devices[0]["peak_dram_bytes_per_s"] == pytest.approx(4.81e12, rel=1e-3)
    assert not any("GPU sampler" in w for w in manifest.get("warnings", []))
