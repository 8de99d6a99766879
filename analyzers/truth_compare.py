"""How far the client's timestamps are from what a reference server actually did.

The reference server (``profiler.selftest``) records, on the same CLOCK_MONOTONIC, when it
received each request and immediately before it wrote each event. Joining its truth with
the client's run on ``x-request-id`` gives, per request and per gap:

- TTFT error = client TTFT − server TTFT, where server TTFT = first output write − receipt.
  It contains the request's transit to the server and the first event's delivery delay.
- ITL error = client gap − server gap between the same two consecutive output events.
- E2E error likewise for the last output event.

These are the client's own measurement errors on this machine (loopback, the event loop's
wake-up delays, parsing), which ``servescope selftest`` reports and the tests bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from analyzers.stats import Stats, describe

if TYPE_CHECKING:
    from servescope.rundir.reader import RunData

__all__ = ["TruthComparison", "compare_with_truth"]

_OUTPUT_KIND = 0


@dataclass(frozen=True, slots=True)
class TruthComparison:
    requests_matched: int
    requests_unmatched: int
    event_count_mismatches: int
    ttft_error_ns: Stats
    itl_error_ns: Stats
    e2e_error_ns: Stats
    abs_ttft_error_ns: Stats
    abs_itl_error_ns: Stats


def compare_with_truth(run: RunData, truth: list[dict[str, Any]]) -> TruthComparison:
    by_id = {t["request_id"]: t for t in truth}
    req = run.requests
    ev = run.events
    ok = req[(req["outcome"] == "success") & (req["phase"] == "measure")]
    out_ev = ev[ev["kind"] == _OUTPUT_KIND]
    times = out_ev.groupby("request_id")["t_ns"].apply(list).to_dict()
    ttft_err: list[int] = []
    e2e_err: list[int] = []
    itl_err: list[np.ndarray] = []
    unmatched = mismatched = 0
    for rid, xid, t_send in zip(ok["request_id"], ok["x_request_id"], ok["t_send_ns"],
                                strict=True):
        t = by_id.get(xid)
        c = times.get(rid)
        if t is None or not c:
            unmatched += 1
            continue
        s = [ts for ts, k in zip(t["t_event_ns"], t["kinds"], strict=True) if k == "output"]
        if len(s) != len(c):
            mismatched += 1
            continue
        ttft_err.append((c[0] - t_send) - (s[0] - t["t_recv_ns"]))
        e2e_err.append((c[-1] - t_send) - (s[-1] - t["t_recv_ns"]))
        if len(c) > 1:
            itl_err.append(np.diff(np.asarray(c, dtype=np.int64))
                           - np.diff(np.asarray(s, dtype=np.int64)))
    itl = np.concatenate(itl_err) if itl_err else np.array([], dtype=np.int64)
    ttft = np.asarray(ttft_err, dtype=np.int64)
    return TruthComparison(
        requests_matched=len(ttft_err), requests_unmatched=unmatched,
        event_count_mismatches=mismatched,
        ttft_error_ns=describe(ttft), itl_error_ns=describe(itl),
        e2e_error_ns=describe(np.asarray(e2e_err, dtype=np.int64)),
        abs_ttft_error_ns=describe(np.abs(ttft)), abs_itl_error_ns=describe(np.abs(itl)),
    )
