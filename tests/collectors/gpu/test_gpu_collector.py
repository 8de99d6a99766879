"""The GPU collector against the fake H200 (real probe values and failures), in-process."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from collectors.base import CollectorUnavailable
from collectors.child import start_children
from collectors.gpu.collector import NO_GPU, GpuCollector
from collectors.gpu.gpm import gpm_every
from tests.collectors.gpu._support import KeepingProvider, context, me, run_in_process
from tests.fakes.nvml import FIELD_IDS, PROBE, FakeNvmlConfig, FakeNvmlProvider


def _tables(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, Any]:
    return (pd.read_parquet(run_dir / "gpu/samples.parquet"),
            pd.read_parquet(run_dir / "gpu/gpm.parquet"),
            pd.read_parquet(run_dir / "gpu/processes.parquet"),
            json.loads((run_dir / "gpu/devices.json").read_text()))


def test_samples_at_the_requested_rate_with_their_real_times(tmp_path):
    stats, _ = run_in_process(FakeNvmlConfig(), tmp_path, 1.05, interval_s=0.05)
    samples, _, _, _ = _tables(tmp_path)
    spacing_ms = samples["t_ns"].diff().dropna() / 1e6
    assert len(samples) == stats.counts["samples"] >= 15
    assert 45 <= statistics.median(spacing_ms) <= 55
    assert spacing_ms.min() > 20  # ticks at deadlines, never bunched up
    assert 45 <= stats.counts["period_ms_median"] <= 55
    assert stats.counts["period_ms_p99"] >= stats.counts["period_ms_median"]
    assert stats.error == ""


def test_gpm_windows_are_at_least_100_ms_when_sampling_faster(tmp_path):
    assert gpm_every(0.05) == 2
    assert gpm_every(0.1) == 1
    assert gpm_every(0.03) == 4
    stats, fake = run_in_process(FakeNvmlConfig(), tmp_path, 1.1, interval_s=0.05)
    _, gpm, _, _ = _tables(tmp_path)
    windows = gpm.drop_duplicates("t_start_ns")
    span_ms = (windows["t_end_ns"] - windows["t_start_ns"]) / 1e6
    assert len(windows) == stats.counts["gpm_windows"] >= 8
    assert span_ms.min() >= 90  # never shorter, even after a tick that ran late
    assert statistics.median(span_ms) == pytest.approx(100, abs=5)
    assert min(fake.gpm_windows_s) >= 0.09  # what NVML itself was asked for
    # windows follow one another: each starts where the previous ended
    assert (windows["t_start_ns"].iloc[1:].to_numpy()
            == windows["t_end_ns"].iloc[:-1].to_numpy()).all()


def test_gpm_windows_carry_the_scripted_loads(tmp_path):
    """idle → copy → GEMM: each window wholly inside a load reads the probe's value for it;
    DRAM bandwidth and tensor activity move in opposite directions."""
    phases = (("idle", 0.45), ("copy", 0.6), ("gemm", 1e9))
    run_in_process(FakeNvmlConfig(phases=phases), tmp_path, 1.7)
    _, gpm, _, _ = _tables(tmp_path)
    wide = gpm.pivot_table(index="t_start_ns", columns="metric", values="value")
    probe = PROBE["gpm"]
    seen = {"idle": 0, "copy": 0, "gemm": 0}
    for load in seen:
        want = probe[load]
        hits = wide[(wide["dram_bw_util"] - want["DRAM_BW_UTIL"]).abs() < 1e-6]
        hits = hits[(hits["any_tensor_util"] - want["ANY_TENSOR_UTIL"]).abs() < 1e-6]
        seen[load] = len(hits)
        if len(hits):
            assert hits["sm_util"].iloc[0] == pytest.approx(want["SM_UTIL"])
            assert hits["sm_occupancy"].iloc[0] == pytest.approx(want["SM_OCCUPANCY"])
            assert hits["hmma_tensor_util"].iloc[0] == pytest.approx(want["HMMA_TENSOR_UTIL"])
    assert seen["idle"] >= 2
    assert seen["copy"] >= 3
    assert seen["gemm"] >= 4
    # the window across copy → GEMM is a time-weighted mix, between the two
    mixed = wide[(wide["dram_bw_util"] < 87.0) & (wide["dram_bw_util"] > 17.3)]
    assert len(mixed) <= 2
    assert set(gpm["metric"]) >= {"sm_util", "sm_occupancy", "dram_bw_util", "any_tensor_util",
                                  "hmma_tensor_util", "imma_tensor_util", "dfma_tensor_util",
                                  "dmma_tensor_util", "fp16_util", "fp32_util", "fp64_util",
                                  "integer_util", "graphics_util", "pcie_tx_per_sec",
                                  "pcie_rx_per_sec", "nvlink_total_rx_per_sec",
                                  "nvlink_total_tx_per_sec"}


def test_nvml_readings_follow_the_load_and_energy_comes_from_the_counter(tmp_path):
    phases = (("idle", 0.5), ("copy", 1e9))
    run_in_process(FakeNvmlConfig(phases=phases), tmp_path, 1.3)
    samples, _gpm, _, _ = _tables(tmp_path)
    snaps = PROBE["snapshots"]
    first, last = samples.iloc[1], samples.iloc[-1]
    assert first["util_gpu_frac"] == 0
    assert first["sm_clock_mhz"] == snaps["idle"]["sm_clock"]
    assert first["clock_event_reasons"] == 1  # GPU idle
    assert last["util_gpu_frac"] == 0.99
    assert last["power_w"] == pytest.approx(402.05)
    assert last["mem_clock_mhz"] == 3201
    assert last["temp_c"] == 35
    assert last["mem_total_bytes"] == PROBE["nvml"]["mem"]["v"]["total"]
    # the energy counter grows by power × time (402 W in the copy phase); it is slow
    # (3.2 ms a read on the H200), so it is read every fifth tick at 10 Hz
    assert samples["energy_mj"].notna().to_list()[:10] == [True, False, False, False, False] * 2
    tail = samples.dropna(subset=["energy_mj"]).iloc[-2:]
    joules = (tail["energy_mj"].iloc[-1] - tail["energy_mj"].iloc[0]) / 1e3
    seconds = (tail["t_ns"].iloc[-1] - tail["t_ns"].iloc[0]) / 1e9
    assert joules / seconds == pytest.approx(402.05, rel=0.05)
    # PCIe rates from the byte counters agree with GPM's PCIe rate in the same load
    assert last["pcie_rx_bytes_per_s"] == pytest.approx(
        PROBE["gpm"]["copy"]["PCIE_RX_PER_SEC"] * 2**20, rel=0.1)
    assert samples["nvlink_tx_bytes_total"].isna().all()


def test_unsupported_fields_are_recorded_once_and_are_not_errors(tmp_path):
    cfg = FakeNvmlConfig(unsupported=("nvmlDeviceGetTotalEnergyConsumption",),
                         gpm_unsupported=("NVLINK_TOTAL_RX_PER_SEC",))
    stats, fake = run_in_process(cfg, tmp_path, 0.8)
    samples, gpm, _, devices = _tables(tmp_path)
    assert fake.calls["nvmlDeviceGetTotalEnergyConsumption"] == 1
    assert samples["energy_mj"].isna().all()
    assert samples["power_w"].notna().all()
    # NVLink field values answered ret 3 once; later ticks ask only for the PCIe counters
    nvlink = {FIELD_IDS["NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX"],
              FIELD_IDS["NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX"]}
    assert nvlink <= set(fake.field_ids_asked[0])
    assert all(not nvlink & set(ids) for ids in fake.field_ids_asked[1:])
    assert len(fake.field_ids_asked) >= 5
    assert "nvlink_total_rx_per_sec" not in set(gpm["metric"])
    assert "nvlink_total_tx_per_sec" in set(gpm["metric"])
    want = ["energy", "gpm_nvlink_total_rx_per_sec", "nvlink_rx_bytes", "nvlink_tx_bytes"]
    assert devices[0]["unsupported"] == want
    assert stats.counts["unsupported_fields"] == want
    assert stats.counts["unsupported"] == 4
    assert stats.counts["errors"] == 0
    assert stats.error == ""


def test_a_failing_call_is_counted_not_raised(tmp_path):
    stats, _ = run_in_process(FakeNvmlConfig(failing=("nvmlDeviceGetPowerUsage",)),
                              tmp_path, 0.7)
    samples, _, _, devices = _tables(tmp_path)
    n = len(samples)
    assert n >= 5
    assert samples["power_w"].isna().all()
    assert samples["util_gpu_frac"].notna().all()  # the rest of each reading is kept
    assert stats.counts["errors"] == n
    assert stats.counts["errors_by_field"] == {"power": n}
    assert stats.error.startswith(f"{n} NVML reads failed (power {n}); first power: "
                                  "NVMLError: Unknown Error"), stats.error
    assert devices[0]["unsupported"] == ["nvlink_rx_bytes", "nvlink_tx_bytes"]


def test_a_nan_gpm_value_is_no_reading_not_an_error(tmp_path):
    """The H200 answered DRAM_BW_UTIL with success and a non-finite value in 3 of ~60
    windows: that window has no dram_bw_util row, the count says so, the run has no error."""
    cfg = FakeNvmlConfig(phases=(("copy", 1e9),), gpm_nan_every=("DRAM_BW_UTIL", 3))
    stats, _ = run_in_process(cfg, tmp_path, 1.05)
    _, gpm, _, _ = _tables(tmp_path)
    windows = stats.counts["gpm_windows"]
    dram = gpm[gpm["metric"] == "dram_bw_util"]
    nan_windows = stats.counts["gpm_nonfinite"]["dram_bw_util"]
    assert nan_windows == windows // 3
    assert nan_windows >= 2
    assert len(dram) == windows - nan_windows
    copy = PROBE["gpm"]["copy"]["DRAM_BW_UTIL"]
    assert dram["value"].to_list() == pytest.approx([copy] * len(dram))
    assert len(gpm[gpm["metric"] == "sm_util"]) == windows  # the window's other metrics stay
    assert stats.counts["gpm_nonfinite_example"] == "nan"
    assert stats.counts["errors"] == 0
    assert stats.error == ""


def test_slow_calls_stay_off_the_fast_path(tmp_path):
    """With the H200's real latencies (energy 3.2 ms a read, PCIe throughput 21 ms) ticks
    still come every 50 ms; the 20 ms PCIe throughput call is never made."""
    stats, fake = run_in_process(FakeNvmlConfig(latency_scale=1.0), tmp_path, 1.05,
                                 interval_s=0.05)
    assert fake.calls["nvmlDeviceGetPcieThroughput"] == 0
    ticks = fake.calls["nvmlDeviceGetUtilizationRates"]
    assert ticks >= 18
    assert fake.calls["nvmlDeviceGetTotalEnergyConsumption"] == -(-ticks // 10)
    assert stats.counts["skipped_ticks"] == 0
    assert 48 <= stats.counts["period_ms_median"] <= 52


def test_devices_json_has_the_derived_hbm_peak(tmp_path):
    run_in_process(FakeNvmlConfig(), tmp_path, 0.3)
    (dev,) = _tables(tmp_path)[3]
    assert dev["peak_dram_bytes_per_s"] == pytest.approx(4.81e12, rel=1e-3)
    assert dev["peak_dram_bytes_per_s"] == 3201e6 * 2 * 6016 / 8
    assert dev["name"] == "NVIDIA H200"
    assert dev["arch"] == 9
    assert dev["gpm_supported"]
    assert dev["power_limit_w"] == 700.0
    assert dev["mig_gpu_instances"] == []


def test_gpus_chosen_by_the_engine_process(tmp_path):
    cfg = FakeNvmlConfig(gpus=3, procs=((1, me(), 5 << 30), (2, 999_999_999, 1 << 30)))
    stats, _ = run_in_process(cfg, tmp_path, 1.2, pid=me(), visible="0")
    samples, _, procs, devices = _tables(tmp_path)
    assert [d["gpu_index"] for d in devices] == [1]
    assert devices[0]["why_watched"] == f"engine process {me()}"
    assert set(samples["gpu_index"]) == {1}
    assert stats.counts["gpus"] == 1
    assert set(procs["pid"]) == {me()}
    assert (procs["used_mem_bytes"] == 5 << 30).all()
    assert len(procs) >= 2  # once a second


def test_gpus_chosen_by_cuda_visible_devices_indexes_and_uuids(tmp_path):
    run_in_process(FakeNvmlConfig(gpus=3), tmp_path / "a", 0.3, visible="2,0")
    devices = _tables(tmp_path / "a")[3]
    assert sorted(d["gpu_index"] for d in devices) == [0, 2]
    assert devices[0]["why_watched"] == "CUDA_VISIBLE_DEVICES=2,0"
    uuid1 = str(PROBE["nvml"]["uuid"]["v"])[:-1] + "1"
    run_in_process(FakeNvmlConfig(gpus=3), tmp_path / "b", 0.3, visible=uuid1)
    assert [d["gpu_index"] for d in _tables(tmp_path / "b")[3]] == [1]
    stats, _ = run_in_process(FakeNvmlConfig(gpus=3), tmp_path / "c", 0.3, visible="")
    assert stats.counts["gpus"] == 0
    assert stats.counts["samples"] == 0
    assert "no GPU of the engine found to watch" in stats.error


def test_all_gpus_without_a_process_or_cuda_visible_devices(tmp_path):
    run_in_process(FakeNvmlConfig(gpus=2), tmp_path, 0.3)
    devices = _tables(tmp_path)[3]
    assert [d["gpu_index"] for d in devices] == [0, 1]
    assert devices[0]["why_watched"].startswith("all GPUs")


def test_a_gpu_the_engine_starts_using_later_is_added(tmp_path):
    cfg = FakeNvmlConfig(gpus=2, procs=((1, me(), 1 << 30),), procs_after_s=0.5)
    run_in_process(cfg, tmp_path, 2.2, pid=me(), visible="0")
    samples, _, _, devices = _tables(tmp_path)
    why = {d["gpu_index"]: d["why_watched"] for d in devices}
    assert why == {0: "CUDA_VISIBLE_DEVICES=0", 1: f"engine process {me()}"}
    first1 = samples[samples["gpu_index"] == 1]["t_ns"].min()
    assert first1 > samples["t_ns"].min() + 0.4e9  # found once its context existed


def test_mig_gpm_per_gpu_instance(tmp_path):
    stats, fake = run_in_process(FakeNvmlConfig(mig_instances=(1, 2)), tmp_path, 0.6)
    _, gpm, _, devices = _tables(tmp_path)
    assert devices[0]["mig_gpu_instances"] == [1, 2]
    assert set(gpm["mig_gpu_instance"]) == {1, 2}
    assert fake.calls["nvmlGpmMigSampleGet"] >= 8
    assert fake.calls["nvmlGpmSampleGet"] == 0
    assert stats.counts["gpm_windows"] == len(gpm.drop_duplicates(
        ["t_start_ns", "mig_gpu_instance"]))


def test_no_nvml_binding_is_a_one_line_usage_error():
    def missing():
        raise ImportError("No module named 'pynvml'")

    with pytest.raises(CollectorUnavailable) as err:
        GpuCollector(nvml=missing).validate_environment()
    assert str(err.value) == ("the gpu collector needs nvidia-ml-py: "
                              "pip install 'servescope[gpu]'")


def test_no_driver_or_no_gpu_is_a_skip_with_one_line(tmp_path):
    for cfg in (FakeNvmlConfig(no_driver=True), FakeNvmlConfig(gpus=0)):
        collector = GpuCollector(nvml=FakeNvmlProvider(cfg))
        collector.validate_environment()  # the binding is there
        warnings: list[str] = []
        running = start_children([collector], context(tmp_path), warnings)
        assert running == []
        assert warnings == [NO_GPU]
        assert NO_GPU == "no NVIDIA GPU/NVML on this machine: gpu collector skipped"
    provider = KeepingProvider(FakeNvmlConfig())
    assert GpuCollector(nvml=provider).skip_reason(context(tmp_path)) == ""
    assert provider.last.calls["nvmlShutdown"] == 1  # NVML let go of in the parent


def test_a_bad_option_is_refused_before_anything_starts(tmp_path):
    collector = GpuCollector(nvml=FakeNvmlProvider())
    with pytest.raises(ValueError, match=r"0\.01–60"):
        collector.stop_bound_s(context(tmp_path, interval_s=0.001))
    assert collector.stop().counts["samples"] == 0  # never started: zero counts


def test_the_fake_uses_pynvml_s_numbers():
    pynvml = pytest.importorskip("pynvml")
    from tests.fakes.nvml import GPM_IDS, FakeNvml

    fake = FakeNvml(FakeNvmlConfig())
    for name, mid in GPM_IDS.items():
        assert getattr(pynvml, f"NVML_GPM_METRIC_{name}") == mid
    for name, fid in FIELD_IDS.items():
        assert getattr(pynvml, name) == fid
    for name in ("NVML_CLOCK_SM", "NVML_CLOCK_MEM", "NVML_TEMPERATURE_GPU",
                 "NVML_ERROR_NOT_SUPPORTED", "NVML_GPM_METRICS_GET_VERSION"):
        assert getattr(fake, name) == getattr(pynvml, name)
