"""``export_perfetto``: the run's sources as one Chrome JSON trace, checked against the
tables the test wrote (times, values, counts) and against an independent reading of them."""

from __future__ import annotations

import gzip
import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from reports.perfetto import export_perfetto
from reports.perfetto import kernels as kernel_source
from reports.perfetto.client import assign_lanes
from servescope.records import EventKind
from servescope.rundir.reader import RunData
from tests.analyzers._rundir import ns
from tests.reports import _gpu_runs as G
from tests.reports._perfetto_runs import (
    FAILED,
    KERNELS_AT_MS,
    KV_USAGE,
    SCRAPES_MS,
    N,
    client_run,
    full_run,
)

Trace = dict[str, Any]


def _load(path: Path) -> Trace:
    raw = path.read_bytes()
    data: Trace = json.loads(gzip.decompress(raw) if path.name.endswith(".gz") else raw)
    return data


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunData, Trace, dict[str, int]]:
    run = full_run(tmp_path_factory.mktemp("perfetto"))
    result = export_perfetto(run.path)
    assert result.path == run.path / "perfetto.json.gz"
    assert result.notes == ()
    return run, _load(result.path), result.counts


def _us(trace: Trace, t_ns: int) -> float:
    return (t_ns - int(trace["otherData"]["origin_mono_ns"])) / 1000


def _names(trace: Trace) -> tuple[dict[int, str], dict[tuple[int, int], str]]:
    procs, threads = {}, {}
    for e in trace["traceEvents"]:
        if e["ph"] == "M" and e["name"] == "process_name":
            procs[e["pid"]] = e["args"]["name"]
        elif e["ph"] == "M" and e["name"] == "thread_name":
            threads[(e["pid"], e["tid"])] = e["args"]["name"]
    return procs, threads


def _pid(trace: Trace, name: str) -> int:
    return next(p for p, n in _names(trace)[0].items() if n == name)


def _slices(trace: Trace, pid: int) -> list[Trace]:
    return [e for e in trace["traceEvents"] if e["ph"] == "X" and e["pid"] == pid]


def _counter(trace: Trace, name: str, key: str) -> list[tuple[float, float]]:
    return [(e["ts"], e["args"][key]) for e in trace["traceEvents"]
            if e["ph"] == "C" and e["name"] == name and key in e["args"]]


def test_every_request_is_one_slice_at_its_send_and_end(
        full: tuple[RunData, Trace, dict[str, int]]) -> None:
    run, trace, counts = full
    client = _pid(trace, "client")
    slices = {e["args"]["request_id"]: e for e in _slices(trace, client)}
    assert len(slices) == len(run.requests) == N == counts["request slices"]
    for r in run.requests.to_dict("records"):
        e = slices[r["request_id"]]
        assert e["ts"] == (r["t_send_ns"] - trace["otherData"]["origin_mono_ns"]) / 1000
        assert e["dur"] == (r["t_end_ns"] - r["t_send_ns"]) / 1000
        assert e["args"]["outcome"] == r["outcome"]
        failed = r["request_id"] in FAILED
        assert e["name"] == ("request: http_error" if failed else "request")
        if not failed:
            assert e["args"]["output_tokens"] == 8
            assert e["args"]["input_tokens"] == 16
    # TTFT and the first-token instant: the first output event of the events table
    ev = run.events[(run.events["kind"] == int(EventKind.OUTPUT)) & (run.events["chars"] > 0)]
    first = ev.groupby("request_id")["t_ns"].min()
    instants = {e["args"]["request_id"]: e for e in trace["traceEvents"]
                if e["ph"] == "i" and e["pid"] == client}
    assert set(instants) == set(first.index) == set(range(N)) - set(FAILED)
    sends = dict(zip(run.requests["request_id"], run.requests["t_send_ns"], strict=True))
    for rid, t_first in first.items():
        assert instants[rid]["ts"] == _us(trace, int(t_first))
        assert instants[rid]["tid"] == slices[rid]["tid"]
        assert slices[rid]["args"]["ttft_ms"] == pytest.approx((t_first - sends[rid]) / 1e6)


def test_overlapping_requests_get_their_own_slot_and_no_more(
        full: tuple[RunData, Trace, dict[str, int]]) -> None:
    run, trace, counts = full
    by_tid: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for e in _slices(trace, _pid(trace, "client")):
        by_tid[e["tid"]].append((e["ts"], e["ts"] + e["dur"]))
    for spans in by_tid.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    # the most requests in flight at once, counted by a sweep over sends and ends
    points = sorted([(t, 1) for t in run.requests["t_send_ns"]]
                    + [(t, -1) for t in run.requests["t_end_ns"]], key=lambda p: (p[0], p[1]))
    depth = peak = 0
    for _, d in points:
        depth += d
        peak = max(peak, depth)
    assert peak > 1
    assert len(by_tid) == peak == counts["client slot tracks"]


def test_assign_lanes_reuses_the_lowest_free_lane() -> None:
    assert assign_lanes([(0, 10), (5, 15), (10, 20), (12, 13), (16, 30)]) == [0, 1, 0, 2, 1]
    assert assign_lanes([]) == []


def test_engine_gauges_are_counters_at_the_scrape_times(
        full: tuple[RunData, Trace, dict[str, int]]) -> None:
    _, trace, _ = full
    kv = _counter(trace, "engine", "kv_cache_usage_frac")
    assert kv == [(_us(trace, ns(t)), v) for t, v in zip(SCRAPES_MS, KV_USAGE, strict=True)]
    assert all(e["pid"] == _pid(trace, "engine metrics") for e in trace["traceEvents"]
               if e["ph"] == "C" and e["name"] == "engine")


def test_gpu_samples_are_counters_per_gpu(
        full: tuple[RunData, Trace, dict[str, int]]) -> None:
    _, trace, counts = full
    times = G.sample_times_ms()
    for gpu in (0, 1):
        power = _counter(trace, f"GPU {gpu}", "power_w")
        assert power == [(_us(trace, ns(t)), G.POWER_W[int(t >= G.SPLIT_MS)]) for t in times]
        mem = _counter(trace, f"GPU {gpu}", "mem_used_bytes")
        assert [v for _, v in mem] == [G.MEM_GIB[int(t >= G.SPLIT_MS)] * 2**30 for t in times]
        sm = _counter(trace, f"GPU {gpu}", "sm_busy_frac")  # GPM, at its window's start
        half = 0.5 if gpu else 1.0
        assert [t for t, _ in sm] == [_us(trace, ns(t)) for t in times]
        assert [v for _, v in sm] == pytest.approx(
            [G.SM_UTIL[int(t >= G.SPLIT_MS)] * half / 100 for t in times])
        dram = _counter(trace, f"GPU {gpu}", "dram_bw_peak_frac")
        assert [v for _, v in dram] == pytest.approx(
            [G.DRAM_UTIL[int(t >= G.SPLIT_MS)] / 100 for t in times])
    pid = _pid(trace, "GPU telemetry")
    assert {e["pid"] for e in trace["traceEvents"]
            if e["ph"] == "C" and e["name"].startswith("GPU ")} == {pid}
    # per GPU: NVML util, power, SM clock, memory; GPM SM busy, occupancy, DRAM, tensor
    assert counts["GPU counter tracks"] == 2 * 8


def test_stack_summary_is_one_slice_per_thread_over_the_window(
        full: tuple[RunData, Trace, dict[str, int]]) -> None:
    _, trace, counts = full
    pid = _pid(trace, "engine CPU stacks (py-spy)")
    slices = {e["args"]["tid"]: e for e in _slices(trace, pid)}
    assert set(slices) == {1234, 1240, 1200}
    assert counts["stack thread slices"] == 3
    busy = slices[1234]
    assert busy["name"] == "on-CPU 98%"
    assert busy["ts"] == _us(trace, ns(0.0))
    assert busy["dur"] == (ns(G.N * G.GAP_MS) - ns(0.0)) / 1000
    assert busy["args"]["hottest_self"][0].startswith(f"{G.HOT_FUNCTION} (")
    _, threads = _names(trace)
    assert threads[(pid, busy["tid"])] == f"engine_core 1234: {G.HOSTILE} (1234)"
    hang = [e for e in trace["traceEvents"] if e["ph"] == "i" and e["pid"] == pid]
    assert [(h["ts"], h["args"]["stalled_s"]) for h in hang] == [(_us(trace, ns(1500.0)), 12.5)]


def _table(run: RunData, name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(run.path / "kernels" / name).to_pylist()
    return rows


def test_kernel_events_keep_the_tables_times_on_their_stream_tracks(
        full: tuple[RunData, Trace, dict[str, int]]) -> None:
    run, trace, counts = full
    gpu_rows = _table(run, "gpu.parquet")
    gpu_pid = _pid(trace, "GPU rank 1")
    procs, threads = _names(trace)
    gpu_slices = [e for e in _slices(trace, gpu_pid) if e["cat"] != "gpu_user_annotation"]
    assert len(gpu_slices) == len(gpu_rows) == 6
    assert (counts["GPU kernel slices"], counts["memcpy slices"],
            counts["memset slices"]) == (4, 1, 1)
    assert sorted((e["name"], e["ts"], e["dur"]) for e in gpu_slices) == sorted(
        (r["name"], _us(trace, r["t_start_ns"]), r["dur_ns"] / 1000) for r in gpu_rows)
    assert {threads[(gpu_pid, e["tid"])] for e in gpu_slices} == {"GPU 0 stream 7"}
    # the ingestion put the traces' first event at KERNELS_AT_MS of the run's clock
    step = next(e for e in _slices(trace, _pid(trace, "rank 1 host"))
                if e["cat"] == "user_annotation")
    assert step["ts"] == _us(trace, ns(KERNELS_AT_MS))
    gemm = next(e for e in gpu_slices if e["name"].startswith("sm90_gemm"))
    assert gemm["ts"] == _us(trace, ns(KERNELS_AT_MS) + 31_000)
    assert gemm["args"]["grid"] == [132, 1, 1]
    assert gemm["args"]["correlation"] == 11
    # the real capture: every CPU op and step annotation of rank 0, on its host threads
    host0 = _slices(trace, _pid(trace, "rank 0 host"))
    ops0 = [r for r in _table(run, "cpu_ops.parquet") if r["rank"] == 0]
    assert sorted((e["name"], e["ts"], e["dur"]) for e in host0 if e["cat"] == "cpu_op") == \
        sorted((r["name"], _us(trace, r["t_start_ns"]), r["dur_ns"] / 1000) for r in ops0)
    steps = [e for e in host0 if e["cat"] == "user_annotation"]
    assert sum(e["name"].startswith("execute_context") for e in steps) == 34
    assert "GPU rank 0" not in procs.values()  # a CPU-only capture has no GPU tracks


def test_launches_point_at_their_first_kernel(
        full: tuple[RunData, Trace, dict[str, int]]) -> None:
    _, trace, counts = full
    events = [e for e in trace["traceEvents"] if "bind_id" in e]
    outs = {e["bind_id"]: e["name"] for e in events if e.get("flow_out")}
    ins = {e["bind_id"]: e["name"] for e in events if e.get("flow_in")}
    assert set(outs) == set(ins)
    assert len(ins) == counts["launch→GPU flows"] == 2
    assert sorted((outs[k], ins[k]) for k in ins) == [
        ("cudaGraphLaunch", "graph_kernel_0"), ("cudaLaunchKernel", "sm90_gemm_bf16}, {tricky}]")]


def test_every_track_is_named_and_on_one_clock(
        full: tuple[RunData, Trace, dict[str, int]]) -> None:
    run, trace, _ = full
    procs, threads = _names(trace)
    drawn = [e for e in trace["traceEvents"] if e["ph"] != "M"]
    assert {e["pid"] for e in drawn} <= set(procs)
    assert {(e["pid"], e["tid"]) for e in drawn if e["ph"] == "X"} <= set(threads)
    assert len({tid for _, tid in threads}) == len(threads)  # tids are unique in the trace
    assert set(procs.values()) >= {"client", "engine metrics", "GPU telemetry",
                                   "engine CPU stacks (py-spy)", "GPU rank 1", "rank 0 host",
                                   "rank 1 host"}
    # the origin is the earliest time of any source: the GPU's first sample, 200 ms early
    assert trace["otherData"]["origin_mono_ns"] == ns(float(G.sample_times_ms()[0]))
    assert min(e["ts"] for e in drawn) == 0.0
    # every kernel event lies inside the client's load: one clock
    reqs = _slices(trace, _pid(trace, "client"))
    lo, hi = min(e["ts"] for e in reqs), max(e["ts"] + e["dur"] for e in reqs)
    kernel_pids = {p for p, n in procs.items() if n.startswith(("GPU rank", "rank "))}
    ks = [e for e in drawn if e["pid"] in kernel_pids]
    assert len(ks) > 9000
    assert all(lo <= e["ts"] and e["ts"] + e["dur"] <= hi for e in ks)
    assert trace["displayTimeUnit"] == "ns"
    wall = trace["otherData"]["origin_wall_ns"]
    assert wall == run.manifest.clock.to_wall_ns(trace["otherData"]["origin_mono_ns"])


def test_a_run_without_gpu_stacks_kernels_or_engine_draws_only_the_client(
        tmp_path: Path) -> None:
    run = client_run(tmp_path)
    result = export_perfetto(run.path, tmp_path / "plain.json")
    trace = _load(result.path)  # plain JSON: the name does not end in .gz
    procs, _ = _names(trace)
    assert list(procs.values()) == ["client"]
    assert {e["ph"] for e in trace["traceEvents"]} == {"X", "i", "M"}
    assert set(result.counts) == {"request slices", "first-token instants",
                                  "client slot tracks"}
    assert not (run.path / "perfetto.json.gz").exists()


def test_batches_smaller_than_the_table_give_the_same_trace(
        full: tuple[RunData, Trace, dict[str, int]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    run, trace, _ = full
    monkeypatch.setattr(kernel_source, "BATCH_ROWS", 3)  # flows cross batch boundaries
    again = _load(export_perfetto(run.path, tmp_path / "small.json.gz").path)
    assert again == trace


def test_kernel_traces_off_the_runs_clock_are_left_out_with_the_reason(
        tmp_path: Path) -> None:
    from collectors.kernels import ingest_traces
    from tests.collectors.kernels._traces import gpu_events, write_trace

    run = client_run(tmp_path)
    ingest_traces([write_trace(tmp_path / "t.json", gpu_events())], run.path, None)
    result = export_perfetto(run.path)
    assert "GPU kernel slices" not in result.counts
    assert len(result.notes) == 1
    assert "not on the run's clock" in result.notes[0]
    assert list(_names(_load(result.path))[0].values()) == ["client"]


def test_a_failed_write_leaves_no_file(tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from reports.perfetto.telemetry import StackSlices
    from servescope.rundir.atomic import RunDirWriteError
    from servescope.rundir.layout import RunDirError

    run = full_run(tmp_path)
    target = tmp_path / "missing-dir" / "x.json.gz"
    with pytest.raises(RunDirWriteError, match="missing-dir"):
        export_perfetto(run.path, target)
    assert not target.parent.exists()

    def broken(*_: object) -> dict[str, int]:
        raise RunDirError("stacks went away")

    monkeypatch.setattr(StackSlices, "write", broken)  # after the client's slices
    with pytest.raises(RunDirError, match="stacks went away"):
        export_perfetto(run.path)
    assert sorted(p.name for p in run.path.iterdir() if "perfetto" in p.name) == []
