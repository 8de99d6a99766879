"""formulas: nccl-tests' algbw/busbw, STREAM byte counts and peaks, each against a hand
computation written out in the test."""

from __future__ import annotations

import pytest

from kernels_bench.formulas import (
    Collective,
    MemOp,
    algbw_bytes_per_s,
    bus_factor,
    busbw_bytes_per_s,
    collective_size_bytes,
    datasheet_peak,
    frac_of_peak,
    kv_gather_bytes,
    mem_moved_bytes,
    nvml_peak_bytes_per_s,
    tp_decode_allreduce_bytes,
)


@pytest.mark.parametrize(("op", "n", "factor"), [
    (Collective.ALL_REDUCE, 8, 14 / 8), (Collective.ALL_REDUCE, 2, 1.0),
    (Collective.ALL_REDUCE, 1, 0.0), (Collective.ALL_GATHER, 8, 7 / 8),
    (Collective.REDUCE_SCATTER, 4, 3 / 4), (Collective.ALL_TO_ALL, 2, 1 / 2),
    (Collective.BROADCAST, 8, 1.0), (Collective.REDUCE, 8, 1.0), (Collective.SEND_RECV, 2, 1.0),
])
def test_bus_factor_is_nccl_tests(op, n, factor):
    assert bus_factor(op, n) == pytest.approx(factor)


def test_allreduce_algbw_and_busbw_by_hand():
    # 1 GiB all-reduce on 8 ranks in 5 ms: algbw = 2^30 / 0.005 s; busbw = algbw * 2*7/8
    alg = algbw_bytes_per_s(1 << 30, 5_000_000)
    assert alg == pytest.approx(214_748_364_800.0)
    assert busbw_bytes_per_s(Collective.ALL_REDUCE, 1 << 30, 5_000_000, 8) == \
        pytest.approx(214_748_364_800.0 * 1.75)


def test_allgather_size_is_the_output_as_in_nccl_tests():
    # AllGatherGetBw: baseBw = count * typesize * nranks / sec, count = per-rank input
    per_rank, n, t_ns = 16 << 20, 8, 1_000_000
    size = collective_size_bytes(Collective.ALL_GATHER, per_rank, n)
    assert size == 128 << 20
    assert algbw_bytes_per_s(size, t_ns) == pytest.approx(per_rank * n / 1e-3)
    assert busbw_bytes_per_s(Collective.ALL_GATHER, size, t_ns, n) == \
        pytest.approx(per_rank * n / 1e-3 * 7 / 8)
    assert collective_size_bytes(Collective.ALL_REDUCE, per_rank, n) == per_rank
    assert collective_size_bytes(Collective.SEND_RECV, per_rank, n) == per_rank


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="positive"):
        algbw_bytes_per_s(8, 0)
    with pytest.raises(ValueError, match="at least 1"):
        bus_factor(Collective.ALL_REDUCE, 0)


def test_stream_byte_counts():
    n = 1 << 20
    assert [mem_moved_bytes(op, n) for op in MemOp] == [n, n, 2 * n, 3 * n]


def test_nvml_peaks_by_hand():
    # H100 SXM: 2619 MHz x 5120 bit x 2 / 8 = 3,352,320,000,000 B/s (= the 3.35 TB/s sheet)
    assert nvml_peak_bytes_per_s(2619, 5120) == 2619e6 * 5120 * 2 / 8 == 3_352_320_000_000
    # our H200: 3201 MHz x 6016 bit -> 4.814 TB/s (above the 4.8 TB/s datasheet)
    assert nvml_peak_bytes_per_s(3201, 6016) == pytest.approx(4.814304e12)


@pytest.mark.parametrize(("name", "label", "hbm"), [
    ("NVIDIA H200", "NVIDIA H200", 4.8e12), ("NVIDIA H200 NVL", "NVIDIA H200", 4.8e12),
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM", 3.35e12),
    ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe", 2.0e12),
    ("NVIDIA H100 NVL", "NVIDIA H100 NVL", 3.9e12),
    ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB SXM", 2.039e12),
    ("NVIDIA A100 80GB PCIe", "NVIDIA A100 80GB PCIe", 1.935e12),
    ("NVIDIA A100-SXM4-40GB", "NVIDIA A100 40GB", 1.555e12),
    ("NVIDIA A100-PCIE-40GB", "NVIDIA A100 40GB", 1.555e12),
    ("NVIDIA L40S", "NVIDIA L40S", 864e9), ("NVIDIA B200", "NVIDIA B200", 8e12),
])
def test_datasheet_rows(name, label, hbm):
    row = datasheet_peak(name)
    assert row is not None
    assert (row.label, row.hbm_bytes_per_s) == (label, hbm)


def test_unknown_and_lookalike_devices_have_no_row():
    assert datasheet_peak("NVIDIA GH200 480GB") is None
    assert datasheet_peak("NVIDIA GeForce RTX 4090") is None


def test_frac_of_peak():
    assert frac_of_peak(4.26e12, 4.81e12) == pytest.approx(0.8857, abs=1e-4)
    assert frac_of_peak(1.0, None) is None
    assert frac_of_peak(1.0, 0.0) is None


def test_kv_gather_bytes_by_hand():
    # batch 2, 20 tokens -> 2 blocks of 16 read whole; 8 heads x 128 x 2 B, K and V, 1 layer
    per_token = 2 * 8 * 128 * 2
    r, w = kv_gather_bytes(batch=2, context_tokens=20, n_layers=1, n_kv_heads=8, head_dim=128,
                           elem_bytes=2)
    assert (r, w) == (2 * 32 * per_token, 2 * 20 * per_token)


def test_tp_decode_size():
    assert tp_decode_allreduce_bytes(8192, 256, 2) == 4 << 20
