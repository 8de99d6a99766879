"""The streaming ingestion against ground truth: hand-made GPU-style traces (every value
known) and the real vLLM-CPU capture counted independently with ``json.load``."""

from __future__ import annotations

import gc
import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from collectors.kernels import read_trace
from servescope.clock import ClockAnchor
from tests.collectors.kernels._traces import (
    BASE_NS,
    T0_US,
    VLLM_CPU,
    gpu_events,
    write_trace,
)

ANCHOR = ClockAnchor(mono_ns=5_000_000_000, wall_ns=BASE_NS + int(T0_US * 1000) - 2_000_000)


def _rows(table: Any) -> list[dict[str, Any]]:
    return list(table.to_pylist())


def test_gpu_trace_tables_and_graph_replay_correlation(tmp_path: Path) -> None:
    kt = read_trace(write_trace(tmp_path / "t_rank0.json", gpu_events()), ANCHOR)
    assert gc.isenabled()  # switched off while reading, back on after
    gpu = _rows(kt.gpu)
    assert [r["kind"] for r in gpu] == ["kernel"] * 4 + ["memcpy", "memset"]
    graph = [r for r in gpu if r["correlation_id"] == 12]
    assert [r["name"] for r in graph] == ["graph_kernel_0", "graph_kernel_1", "graph_kernel_2"]
    runtime = {r["correlation_id"]: r for r in _rows(kt.runtime)}
    assert runtime[12]["name"] == "cudaGraphLaunch"
    assert runtime[11]["name"] == "cudaLaunchKernel"
    # every kernel finds its launch by correlation id, the graph's three included
    assert all(runtime[r["correlation_id"]]["external_id"] in (2, 3)
               for r in gpu if r["kind"] == "kernel")
    eager = next(r for r in gpu if r["correlation_id"] == 11)
    assert eager["name"] == "sm90_gemm_bf16}, {tricky}]"
    assert (eager["device"], eager["stream"], eager["grid"], eager["block"]) == (0, 7, [132, 1, 1],
                                                                                 [128, 1, 1])
    assert eager["dur_ns"] == 40_250
    memcpy = next(r for r in gpu if r["kind"] == "memcpy")
    assert (memcpy["bytes"], memcpy["dur_ns"]) == (8192, 3_001)
    flows = _rows(kt.flows)
    assert sorted((f["flow_id"], f["phase"]) for f in flows) == [(11, "f"), (11, "s"),
                                                                 (12, "f"), (12, "s")]
    # a flow's finish sits on the first kernel of its correlation, its start on the launch
    for f in flows:
        on = runtime[f["flow_id"]] if f["phase"] == "s" else next(
            r for r in gpu if r["correlation_id"] == f["flow_id"])
        assert f["t_ns"] == on["t_start_ns"]
    ann = _rows(kt.annotations)
    assert [(a["cat"], a["device"], a["stream"]) for a in ann] == [
        ("user_annotation", -1, -1), ("gpu_user_annotation", 0, 7)]
    cpu = _rows(kt.cpu_ops)
    assert [(c["name"], c["pid"], c["tid"], c["external_id"]) for c in cpu] == [
        ("aten::mm", 4242, 4242, 2)]  # python_function only when asked
    rec = kt.traces[0]
    assert (rec.rank, rec.events_read, rec.events_kept, rec.flows_kept, rec.truncated) == (
        0, len(gpu_events()), 11, 4, False)


def test_clock_rule_base_plus_ts_onto_the_anchor(tmp_path: Path) -> None:
    kt = read_trace(write_trace(tmp_path / "t.json", gpu_events()), ANCHOR)
    ann = _rows(kt.annotations)[0]
    wall = BASE_NS + round(Decimal(str(T0_US)) * 1000)
    assert ann["t_start_ns"] == ANCHOR.mono_ns + (wall - ANCHOR.wall_ns)
    assert ann["t_start_ns"] == 5_002_000_000  # 2 ms after the anchor, to the ns
    rec = kt.traces[0]
    assert rec.clock == "base_wall"
    assert rec.trace_to_mono_ns == ANCHOR.mono_ns - ANCHOR.wall_ns
    assert rec.clock_uncertainty_ns == 1_000 + 2_000_000 * 500 // 1_000_000  # 1 µs + 500 ppm
    bare = read_trace(tmp_path / "t.json").traces[0]
    assert (bare.clock, bare.clock_uncertainty_ns) == ("unaligned", -1)


def test_epoch_microseconds_without_base(tmp_path: Path) -> None:
    epoch_us = 1_790_000_000_000_000.0 + 0.5
    events = [_e for _e in gpu_events() if _e["ph"] == "X"][:1]
    events[0]["ts"] = epoch_us
    path = write_trace(tmp_path / "old.json", events, header={"schemaVersion": 1})
    anchor = ClockAnchor(mono_ns=0, wall_ns=1_790_000_000_000_000_000)
    kt = read_trace(path, anchor)
    assert kt.traces[0].clock == "epoch_wall"
    assert _rows(kt.annotations)[0]["t_start_ns"] == 500


@pytest.mark.parametrize("layout", ["minified", "lines", "kineto"])
@pytest.mark.parametrize("batch_bytes", [1, 64, 1 << 20])
def test_layout_does_not_change_the_tables(tmp_path: Path, layout: str,
                                           batch_bytes: int) -> None:
    from collectors.kernels.ingest import MemorySink, ingest_trace

    ref = read_trace(write_trace(tmp_path / "ref.json", gpu_events(), layout="minified"))
    path = write_trace(tmp_path / f"t.{layout}.json.gz", gpu_events(), layout=layout)
    sink = MemorySink()
    rec = ingest_trace(path, sink, None, batch_bytes=batch_bytes)
    got = sink.tables([rec])
    for name in ("gpu", "runtime", "cpu_ops", "annotations", "flows"):
        assert getattr(got, name).equals(getattr(ref, name)), (name, layout, batch_bytes)
    assert rec.warnings == ""
    assert not rec.truncated


def _vllm_reference() -> dict[str, Any]:
    with gzip.open(VLLM_CPU, "rt") as f:
        ref: dict[str, Any] = json.load(f, parse_float=Decimal)
    return ref


def test_real_vllm_cpu_capture_matches_json_load() -> None:
    ref = _vllm_reference()
    events = ref["traceEvents"]
    steps = [e for e in events if e.get("ph") == "X" and e.get("cat") == "user_annotation"
             and e["name"].startswith("execute_context_")]
    cpu_ops = [e for e in events if e.get("ph") == "X" and e.get("cat") == "cpu_op"]
    kt = read_trace(VLLM_CPU, ANCHOR)
    ann = [r for r in _rows(kt.annotations) if r["name"].startswith("execute_context_")]
    assert len(ann) == len(steps) > 0
    assert sum(r["dur_ns"] for r in ann) == sum(int(e["dur"] * 1000) for e in steps)
    shift = ref["baseTimeNanoseconds"] + ANCHOR.mono_ns - ANCHOR.wall_ns
    assert sorted(r["t_start_ns"] for r in ann) == sorted(
        int(e["ts"] * 1000) + shift for e in steps)
    assert kt.cpu_ops.num_rows == len(cpu_ops)
    assert sum(kt.cpu_ops.column("dur_ns").to_pylist()) == sum(
        int(e["dur"] * 1000) for e in cpu_ops)
    assert kt.gpu.num_rows == 0
    assert kt.runtime.num_rows == 0
    rec = kt.traces[0]
    assert (rec.rank, rec.events_read, rec.truncated, rec.warnings) == (0, len(events), False,
                                                                         "")
    assert rec.events_kept == len([e for e in events if e.get("ph") == "X" and e.get("cat") in (
        "cpu_op", "user_annotation", "gpu_user_annotation")])


def test_plain_file_gives_the_same_tables(tmp_path: Path) -> None:
    plain = tmp_path / "tinyrun_rank0.pt.trace.json"
    plain.write_bytes(gzip.decompress(VLLM_CPU.read_bytes()))
    a, b = read_trace(VLLM_CPU, ANCHOR), read_trace(plain, ANCHOR)
    for name in ("gpu", "runtime", "cpu_ops", "annotations", "flows"):
        assert getattr(a, name).equals(getattr(b, name))


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_file_keeps_what_was_read(tmp_path: Path, gz: bool) -> None:
    full = read_trace(VLLM_CPU, ANCHOR)
    raw = VLLM_CPU.read_bytes() if gz else gzip.decompress(VLLM_CPU.read_bytes())
    cut = tmp_path / ("cut.json.gz" if gz else "cut.json")
    cut.write_bytes(raw[: len(raw) * 6 // 10])
    kt = read_trace(cut, ANCHOR)
    rec = kt.traces[0]
    assert rec.truncated
    assert rec.warnings
    assert 0 < kt.cpu_ops.num_rows < full.cpu_ops.num_rows
    # what was kept is exactly the beginning of the whole file's rows
    assert kt.cpu_ops.equals(full.cpu_ops.slice(0, kt.cpu_ops.num_rows))


def test_not_a_trace_is_a_record_with_a_warning(tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text('{"hello": [1, 2, 3]}')
    rec = read_trace(junk).traces[0]
    assert "no \"traceEvents\" array" in rec.warnings
    assert rec.events_read == 0
    missing = read_trace(tmp_path / "nope.json.gz").traces[0]
    assert "cannot open" in missing.warnings


@pytest.mark.parametrize("workers", [1, 2])
def test_run_dir_tables_for_several_ranks(tmp_path: Path, workers: int) -> None:
    from collectors.kernels import ingest_traces

    r0 = write_trace(tmp_path / "dp0_pp0_tp0_dcp0_ep0_rank0.1.pt.trace.json.gz", gpu_events())
    ev1 = gpu_events()
    r1 = write_trace(tmp_path / "dp0_pp0_tp1_dcp0_ep0_rank1.1.pt.trace.json.gz", ev1,
                     header={"schemaVersion": 1, "baseTimeNanoseconds": BASE_NS})
    run = tmp_path / "run"
    run.mkdir()
    recs = ingest_traces([r0, r1, VLLM_CPU, tmp_path / "gone.json"], run, ANCHOR,
                         workers=workers)
    assert [r.rank for r in recs] == [0, 1, 0, -1]
    assert "rank 0 also in" in recs[2].warnings
    assert "cannot open" in recs[3].warnings
    gpu = pq.read_table(run / "kernels" / "gpu.parquet")
    assert sorted(set(gpu.column("rank").to_pylist())) == [0, 1]
    assert gpu.num_rows == 12
    cpu = pq.read_table(run / "kernels" / "cpu_ops.parquet")
    assert cpu.num_rows == 2 + read_trace(VLLM_CPU).cpu_ops.num_rows
    traces = pq.read_table(run / "kernels" / "traces.parquet").to_pylist()
    assert [t["file"] for t in traces] == [r0.name, r1.name, VLLM_CPU.name, "gone.json"]
    assert sorted(p.name for p in (run / "kernels").iterdir()) == [
        "annotations.parquet", "cpu_ops.parquet", "flows.parquet", "gpu.parquet",
        "runtime.parquet", "traces.parquet"]  # no temporary file, no part left
    # rows in the order the files were given, whichever process read them
    assert gpu.column("rank").to_pylist() == [0] * 6 + [1] * 6


def test_unwritable_run_dir_is_one_error_and_no_temporary_file(tmp_path: Path) -> None:
    from collectors.kernels import ingest_traces
    from servescope.rundir.atomic import RunDirWriteError

    run = tmp_path / "run"
    (run / "kernels").mkdir(parents=True)
    (run / "kernels" / "traces.parquet").mkdir()  # the last file cannot be written
    with pytest.raises(RunDirWriteError):
        ingest_traces([VLLM_CPU], run, ANCHOR)
    assert not list((run / "kernels").glob("*.tmp"))


def test_rank_from_names_and_header() -> None:
    from collectors.kernels import rank_of

    assert rank_of(Path("dp0_pp0_tp2_dcp0_ep0_rank5.17.pt.trace.json.gz"), {}) == 5
    assert rank_of(Path("trtllm-trace-1700-ab12cd34-rank-3.json"), {}) == 3
    assert rank_of(Path("1700000000.1-TP-1.trace.json.gz"), {}) == 1
    assert rank_of(Path("vm_18494.async_llm.17.pt.trace.json.gz"), {}) == -1
    assert rank_of(Path("x_rank5.json"), {"distributedInfo": {"rank": 2}}) == 2
    assert rank_of(Path("dp0_pp0_tp3_dcp0_ep0.json"), {}) == 3


def test_python_functions_when_asked(tmp_path: Path) -> None:
    kt = read_trace(write_trace(tmp_path / "t.json", gpu_events()), python_functions=True)
    assert sorted(kt.cpu_ops.column("cat").to_pylist()) == ["cpu_op", "python_function"]


def test_events_frame_has_the_analysis_columns(tmp_path: Path) -> None:
    from dataclasses import fields

    from servescope.records.kernels import KernelEvent

    frame = read_trace(write_trace(tmp_path / "t.json", gpu_events())).events().to_pandas()
    assert {f.name for f in fields(KernelEvent)} <= set(frame.columns)
    assert len(frame) == 11
    assert (frame["step"] == -1).all()


def test_empty_event_array_and_concatenated_gzip_members(tmp_path: Path) -> None:
    empty = write_trace(tmp_path / "empty.json", [])
    kt = read_trace(empty, ANCHOR)
    assert (kt.traces[0].events_read, kt.traces[0].warnings, kt.traces[0].truncated) == (
        0, "", False)
    # a gzip file of two members (``cat a.gz b.gz``) is one text, as gzip -d reads it
    text = (tmp_path / "whole.json")
    write_trace(text, gpu_events())
    data = text.read_bytes()
    two = tmp_path / "two.json.gz"
    two.write_bytes(gzip.compress(data[:1000]) + gzip.compress(data[1000:]))
    got, ref = read_trace(two, ANCHOR), read_trace(text, ANCHOR)
    assert got.traces[0].warnings == ""
    assert got.gpu.equals(ref.gpu)
    assert got.flows.equals(ref.flows)
