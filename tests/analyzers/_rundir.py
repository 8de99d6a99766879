"""Run directories with hand-chosen timestamps, written through the real collector path.

Times are given in milliseconds after an arbitrary monotonic origin ``T0`` (large, like a
real ``CLOCK_MONOTONIC`` reading) and stored as integer nanoseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collectors.timeline import TimelineRecorder
from servescope.clock import take_anchor
from servescope.records import EventKind, Outcome, RequestRecord
from servescope.rundir.manifest import Manifest, host_fingerprint, write_manifest
from servescope.rundir.reader import RunData, load_run
from servescope.rundir.tables import finalize_tables

MS = 1_000_000
T0 = 2**53 + 123_456_789  # above 2**53 ns: float64 timestamps would lose nanoseconds

Event = tuple[float, EventKind, int, int]  # (t_ms, kind, chars, tokens_cum)


def ns(t_ms: float) -> int:
    return T0 + round(t_ms * MS)


def role(t_ms: float, cum: int = -1) -> Event:
    return (t_ms, EventKind.ROLE, 0, cum)


def out(t_ms: float, chars: int = 3, cum: int = -1) -> Event:
    return (t_ms, EventKind.OUTPUT, chars, cum)


def usage(t_ms: float, cum: int) -> Event:
    return (t_ms, EventKind.USAGE, 0, cum)


def finish(t_ms: float, cum: int = -1) -> Event:
    return (t_ms, EventKind.FINISH, 0, cum)


def request(
    request_id: int,
    send_ms: float,
    events: list[Event],
    *,
    done_ms: float | None = None,
    end_ms: float | None = None,
    completion_tokens: int = -1,
    prompt_tokens: int = -1,
    outcome: Outcome = Outcome.SUCCESS,
    intended_ms: float | None = None,
    **fields: Any,
) -> RequestRecord:
    """A request whose events are ``events`` then, if ``done_ms`` is given, ``[DONE]``.

    ``end_ms`` defaults to the last event (or the send) + 0.5 ms.
    """
    evs = list(events)
    if done_ms is not None:
        evs.append((done_ms, EventKind.DONE, 0, -1))
    last = evs[-1][0] if evs else send_ms
    rec = RequestRecord(
        request_id=request_id,
        t_intended_ns=ns(intended_ms) if intended_ms is not None else -1,
        t_send_ns=ns(send_ms),
        t_headers_ns=ns(evs[0][0]) if evs else -1,
        t_done_ns=ns(done_ms) if done_ms is not None else -1,
        t_end_ns=ns(end_ms if end_ms is not None else last + 0.5),
        status=200,
        outcome=outcome.value,
        usage_prompt_tokens=prompt_tokens,
        usage_completion_tokens=completion_tokens,
        **fields,
    )
    rec.ev_t_ns = [ns(e[0]) for e in evs]
    rec.ev_kind = [int(e[1]) for e in evs]
    rec.ev_chars = [e[2] for e in evs]
    rec.ev_tokens_cum = [e[3] for e in evs]
    return rec


def write_run(root: Path, records: list[RequestRecord], *, finalize: bool = True,
              name: str = "run") -> RunData:
    """Write ``records`` with the real journal writer, finalize (or not) and load the run."""
    run_dir = root / name
    run_dir.mkdir()
    anchor = take_anchor()
    manifest = Manifest(
        run_id=name, started_wall_ns=anchor.wall_ns, clock=anchor,
        host=host_fingerprint(), command_line=["pytest"], workload={},
        seed=0, target={}, status="complete" if finalize else "running",
    )
    write_manifest(run_dir, manifest)
    with TimelineRecorder(run_dir, worker_id=0) as recorder:
        for rec in records:
            recorder.write(rec)
    if finalize:
        finalize_tables(run_dir)
    return load_run(run_dir)
