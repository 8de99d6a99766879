"""servescope's own client: ``servescope attach`` closed-loop against the reference server.

Counts and window come from the run directory it writes: ``requests.parquet`` (outcome,
``usage_completion_tokens``, ``t_start_ns``/``t_send_ns``/``t_end_ns`` on CLOCK_MONOTONIC,
the clock this harness samples CPU on) and ``events.parquet`` (content events, kind 0).
Duration = max(``t_end_ns``) - min(``t_start_ns``) over the measured requests
(``t_send_ns`` in runs written before ``t_start_ns`` existed).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.peers.common import (
    CellResult,
    CellSpec,
    ToolReport,
    error_result,
    make_result,
    run_measured,
)

__all__ = ["run", "run_workers"]

_ROOT = Path(__file__).resolve().parents[2]
_SERVESCOPE = _ROOT / ".venv" / "bin" / "servescope"


def _argv(spec: CellSpec, run_dir: Path, workers: int) -> list[str]:
    return [
        str(_SERVESCOPE), "attach", "--url", spec.url, "--model", spec.model,
        "--endpoint", "completions", "--concurrency", str(spec.concurrency),
        "--requests", str(spec.requests), "--input-len", f"fixed:{spec.input_tokens}",
        "--output-len", f"fixed:{spec.output_tokens}", "--workers", str(workers),
        "--out", str(run_dir),
    ]  # fmt: skip


def parse_run_dir(run_dir: Path) -> tuple[ToolReport, dict[str, object]]:
    """Counts, output tokens, content events and window of a servescope run directory.

    A request's slot starts at ``t_start_ns`` (the closed loop began it) where the run has
    that column, else at ``t_send_ns``; ``t_send_ns`` - ``t_start_ns`` (body on the socket)
    grows when the client's event loop is saturated and is reported as the send delay.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = run_dir / "requests.parquet"
    start_col = "t_start_ns" if "t_start_ns" in pq.read_schema(path).names else "t_send_ns"
    cols = ["phase", "outcome", start_col, "t_send_ns", "t_end_ns", "usage_completion_tokens"]
    req = pq.read_table(path, columns=sorted(set(cols)))
    req = req.filter(pc.equal(req["phase"], "measure"))
    ok = req.filter(pc.equal(req["outcome"], "success"))
    busy_ns = pc.sum(pc.subtract(req["t_end_ns"], req[start_col])).as_py()
    send_delay = pc.subtract(req["t_send_ns"], req[start_col])
    t0 = int(pc.min(req[start_col]).as_py())
    t1 = int(pc.max(req["t_end_ns"]).as_py())
    kinds = pq.read_table(run_dir / "events.parquet", columns=["kind"])["kind"]
    content_events = int(pc.sum(pc.equal(kinds, 0)).as_py() or 0)
    usage = pc.sum(pc.max_element_wise(ok["usage_completion_tokens"], 0)).as_py()
    report = ToolReport(
        completed=ok.num_rows,
        failed=req.num_rows - ok.num_rows,
        duration_s=(t1 - t0) / 1e9,
        window_mono_ns=(t0, t1),
        tool_output_tokens=int(usage or 0),
        tool_content_events=content_events,
        busy_s=int(busy_ns or 0) / 1e9,
    )
    quantiles = pc.quantile(send_delay, q=[0.5, 0.99]).to_pylist()
    extra: dict[str, object] = {
        "servescope_slot_start": start_col,
        "servescope_send_delay_ms_p50": quantiles[0] / 1e6,
        "servescope_send_delay_ms_p99": quantiles[1] / 1e6,
    }
    return report, extra


def run_workers(spec: CellSpec, workers: int) -> CellResult:
    """``servescope attach`` with ``workers`` client processes."""
    tool = "servescope" if workers == 1 else f"servescope --workers {workers}"
    if not _SERVESCOPE.exists():
        return error_result(tool, spec, f"{_SERVESCOPE} not found (install the project venv)")
    run_dir = spec.work_dir / "run"
    proc = run_measured(_argv(spec, run_dir, workers), spec, cwd=spec.work_dir)
    try:
        report, extra = parse_run_dir(run_dir)
    except (OSError, ValueError, TypeError) as exc:
        return error_result(tool, spec, f"{type(exc).__name__}: {exc}\n{proc.tail()}", proc)
    return make_result(tool, spec, proc, report, extra={"workers": workers, **extra})


def run(spec: CellSpec) -> CellResult:
    """``servescope attach`` with one client process."""
    return run_workers(spec, 1)
