"""``servescope run --collect gpu -- <fake engine>`` in this process, with the fake H200.

The fake NVML reaches the run through the collector registry the command takes
(``EngineOptions(registry=…)``, as tests/profiler/test_cli.py does for its probe), not through
an environment variable: the real registry and the real CLI are left alone.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.collectors.gpu._support import run_with_fake_h200

pytestmark = pytest.mark.timeout(120)


def test_run_with_the_gpu_collector_writes_its_files_and_counts(tmp_path):

    out = tmp_path / "run"
    code = run_with_fake_h200(out, requests=20, concurrency=2, output_len="fixed:16")
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
