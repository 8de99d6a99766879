"""Host-memory kernels do what they claim (checked against numpy), the KV gather reads the
blocks its table names, and a written bench run reads back into compare's samples exactly."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from analyzers.bandwidth import bandwidth_samples, headlines, read_bandwidth  # noqa: E402
from kernels_bench.formulas import MemOp  # noqa: E402
from kernels_bench.host_mem import HostSettings, host_kernels, run_host_bench  # noqa: E402
from kernels_bench.kv_gather import KvShape, kv_gather_case  # noqa: E402
from kernels_bench.results import BenchRun, make_sample, write_bench_run  # noqa: E402
from kernels_bench.timing import percentile, repeat_stats  # noqa: E402


def test_host_kernels_compute_what_they_count():
    k = host_kernels(4096)
    assert float(k[MemOp.READ]()) == 1024.0  # b = 1.0 x 1024 elements
    out = k[MemOp.WRITE]()
    assert np.array_equal(out.numpy(), np.full(1024, 3.0, dtype=np.float32))
    out = k[MemOp.COPY]()
    assert np.array_equal(out.numpy(), np.ones(1024, dtype=np.float32))
    out = k[MemOp.TRIAD]()
    assert np.array_equal(out.numpy(), np.full(1024, 1.0 + 3.0 * 2.0, dtype=np.float32))


def test_host_bench_samples_and_numpy_cross_check():
    size = 8 << 20
    run = run_host_bench(HostSettings(sizes_bytes=(size,), repeats=7, warmup=1, threads=1))
    by = {s.bench: s for s in run.samples}
    assert set(by) == {"host_read", "host_write", "host_copy", "host_triad"}
    assert [by[f"host_{o}"].moved_bytes for o in ("read", "write", "copy", "triad")] == \
        [size, size, 2 * size, 3 * size]
    for s in run.samples:
        assert s.bytes_per_s == pytest.approx(s.moved_bytes / (s.time_ns / 1e9))
        assert s.repeats == 7
        assert s.peak_nvml_bytes_per_s is None
    assert len(run.repeats) == 4 * 7
    # numpy's copy of the same arrays, timed independently: same order of magnitude
    a, b = np.zeros(size // 4, np.float32), np.ones(size // 4, np.float32)
    import time
    ts = []
    for _ in range(7):
        t0 = time.perf_counter_ns()
        np.copyto(a, b)
        ts.append(time.perf_counter_ns() - t0)
    numpy_bps = 2 * size / (float(np.median(ts)) / 1e9)
    assert 0.2 < by["host_copy"].bytes_per_s / numpy_bps < 5.0


def test_percentiles_match_numpy():
    xs = [5, 1, 9, 3, 7, 2]
    for q in (10, 50, 90):
        assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))
    st = repeat_stats([100, 200, 300])
    assert (st.median_ns, st.p10_ns, st.p90_ns) == (200, 120, 280)
    assert st.spread_frac == pytest.approx(0.8)


def test_kv_gather_reads_the_named_blocks():
    shape = KvShape(n_kv_heads=2, head_dim=4, context_tokens=40, block_size=16,
                    dtype="float32")
    case = kv_gather_case(3, shape, "cpu", seed=1)
    case.gather()
    table = case.block_table.numpy()
    k, ko = case.k_cache.numpy(), case.k_out.numpy()
    assert table.shape == (3, 3)  # 40 tokens -> 3 blocks of 16
    for row, blocks in enumerate(table):
        for col, blk in enumerate(blocks):
            assert np.array_equal(ko[row * 3 + col], k[blk])
    per_token = 2 * 2 * 4 * 4
    assert (case.read_bytes, case.write_bytes) == (3 * 48 * per_token, 3 * 48 * per_token)


def test_written_run_reads_back_as_compare_samples(tmp_path):
    run = BenchRun("collectives")
    for size, times in ((1024, [1000, 2000, 4000]), (4096, [2000, 4000, 8000])):
        s = make_sample("all_reduce", "gloo", size_bytes=size, moved_bytes=size,
                        times_ns=times, peaks=None, dtype="float32", bus_factor=1.5, ranks=4)
        run.add(s, times)
    slow = [10_000, 10_000, 10_000]
    run.add(make_sample("all_reduce", "other", size_bytes=4096, moved_bytes=4096,
                        times_ns=slow, peaks=None, dtype="float32", bus_factor=1.5), slow)
    out = write_bench_run(tmp_path / "r", run, command_line=["x"], settings={"k": 1})
    table = read_bandwidth(out)
    assert table is not None
    assert len(table) == 3
    h = headlines(table)["all_reduce"]
    assert (h.implementation, h.size_bytes, h.bus) == ("gloo", 4096, True)
    assert h.bytes_per_s == pytest.approx(4096 / 4e-6 * 1.5)
    got = bandwidth_samples(out)["bw_all_reduce"]
    assert got == pytest.approx([4096 / t * 1e9 * 1.5 for t in (2000, 4000, 8000)])
    with pytest.raises(Exception, match="already holds a run"):
        write_bench_run(out, run, command_line=["x"], settings={})
