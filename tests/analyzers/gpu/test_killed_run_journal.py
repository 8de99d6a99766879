"""A run killed before the GPU collector wrote its tables keeps its samples: the analysis
reads ``gpu/journal.jsonl`` (the collector's own line format, a torn last line included)."""

from __future__ import annotations

from pathlib import Path

import orjson

from analyzers.gpu.load import read_gpu
from servescope.records.gpu import GpmSample, GpuSample
from servescope.rundir.gpu_tables import GPU_JOURNAL, row

T0 = 10_000_000_000


def _sample(i: int) -> GpuSample:
    return GpuSample(t_ns=T0 + i * 100_000_000, gpu_index=0, gpu_uuid="GPU-x",
                     mig_gpu_instance=None, util_gpu_frac=0.5, util_mem_frac=0.1,
                     mem_used_bytes=1 << 30, mem_total_bytes=8 << 30, power_w=100.0 + i,
                     energy_mj=1000 * i if i % 5 == 0 else None, sm_clock_mhz=1980,
                     mem_clock_mhz=3201, clock_event_reasons=0, temp_c=40,
                     pcie_tx_bytes_per_s=None, pcie_rx_bytes_per_s=None,
                     nvlink_tx_bytes_total=None, nvlink_rx_bytes_total=None)


def _gpm(i: int) -> GpmSample:
    t = T0 + i * 100_000_000
    return GpmSample(t_start_ns=t - 100_000_000, t_end_ns=t, gpu_index=0,
                     mig_gpu_instance=None, metric_id=2, metric="sm_util", value=10.0 * i)


def test_the_journal_of_a_killed_run_is_read(tmp_path: Path) -> None:
    (tmp_path / "gpu").mkdir()
    lines = [orjson.dumps({"t": _sample(i).t_ns, "s": [row(_sample(i))],
                           "g": [row(_gpm(i))] if i else [], "p": []}) for i in range(6)]
    (tmp_path / GPU_JOURNAL).write_bytes(b"\n".join(lines) + b'\n{"t": 1, "s": [[')  # torn
    tables = read_gpu(tmp_path)
    assert tables is not None
    assert list(tables.samples["power_w"]) == [100.0 + i for i in range(6)]
    assert tables.samples["energy_mj"].dropna().tolist() == [0, 5000]
    assert list(tables.gpm["value"]) == [10.0 * i for i in range(1, 6)]
    assert tables.devices == ()
    assert any("gpu/journal.jsonl" in w for w in tables.warnings)
    assert any("incomplete GPU sample line" in w for w in tables.warnings)


def test_written_tables_win_over_a_leftover_journal(tmp_path: Path) -> None:
    assert read_gpu(tmp_path) is None  # no gpu/ at all
    (tmp_path / "gpu").mkdir()
    assert read_gpu(tmp_path) is None  # an empty gpu/: nothing recorded
