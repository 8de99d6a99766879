"""The client's requests: one complete slice per request, from its send to its end, on one
of as few "slot" tracks as keep overlapping requests apart, and an instant at its first
output token."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reports.perfetto.tracks import CLIENT_PID, Tracks
from reports.perfetto.writer import TraceWriter

if TYPE_CHECKING:
    import pandas as pd

    from servescope.rundir.reader import RunData

__all__ = ["ClientSpans", "assign_lanes", "client_spans"]


def assign_lanes(spans: list[tuple[int, int]]) -> list[int]:
    """For each (start, end), the lowest-numbered lane free at its start (lanes are reused
    once the request on them has ended), taken in order of start: two requests of one lane
    never overlap."""
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    lanes = [0] * len(spans)
    busy: list[tuple[int, int]] = []  # (end, lane)
    free: list[int] = []
    opened = 0
    for i in order:
        start, end = spans[i]
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane, opened = opened, opened + 1
        lanes[i] = lane
        heapq.heappush(busy, (end, lane))
    return lanes


def _int(v: Any) -> int:
    return -1 if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)


@dataclass(frozen=True, slots=True)
class ClientSpans:
    """Every request with a known start, joined with its metrics."""

    frame: pd.DataFrame  # requests.parquet columns + the request metrics used here
    skipped: int  # requests with neither a send nor a start time

    def first_ns(self) -> int | None:
        return int(self.frame["_start"].min()) if len(self.frame) else None

    def write(self, w: TraceWriter, tracks: Tracks) -> dict[str, int]:
        if not len(self.frame):
            return {}
        tracks.process(CLIENT_PID, "client")
        f = self.frame
        lanes = assign_lanes(list(zip(f["_start"].tolist(), f["_end"].tolist(), strict=True)))
        first = 0
        for lane, r in zip(lanes, f.to_dict("records"), strict=True):
            tid = tracks.thread(CLIENT_PID, lane, f"slot {lane}", lane)
            outcome = str(r["outcome"])
            args: dict[str, Any] = {
                "request_id": int(r["request_id"]), "outcome": outcome,
                "status": _int(r["status"]), "phase": str(r["phase"]), "step": _int(r["step"]),
                "worker_id": _int(r["worker_id"]),
                "input_tokens": _int(r["input_tokens"]),
                "input_tokens_source": str(r["input_tokens_source"]),
                "output_tokens": _int(r["output_tokens"]),
                "output_tokens_source": str(r["output_tokens_source"]),
                "start": "t_send_ns" if r["t_send_ns"] >= 0 else "t_start_ns (never sent)",
            }
            ttft = r["ttft_ns"]
            if ttft is not None and not math.isnan(ttft):
                args["ttft_ms"] = round(float(ttft) / 1e6, 6)
            if r["x_request_id"]:
                args["x_request_id"] = str(r["x_request_id"])
            if r["error"]:
                args["error"] = str(r["error"])
            start, end = int(r["_start"]), int(r["_end"])
            name = "request" if outcome == "success" else f"request: {outcome}"
            w.emit({"ph": "X", "name": name, "cat": "request", "pid": CLIENT_PID, "tid": tid,
                    "ts": w.us(start), "dur": (end - start) / 1000, "args": args})
            t_first = _int(r["t_first_output_ns"])
            if t_first >= 0:
                first += 1
                w.emit({"ph": "i", "s": "t", "name": "first token", "cat": "request",
                        "pid": CLIENT_PID, "tid": tid, "ts": w.us(t_first),
                        "args": {"request_id": int(r["request_id"])}})
        return {"request slices": len(f), "first-token instants": first,
                "client slot tracks": tracks.count(CLIENT_PID)}


def client_spans(run: RunData) -> ClientSpans:
    """The requests of ``run`` ready to write: start = ``t_send_ns`` (``t_start_ns`` for a
    request never sent), end = ``t_end_ns`` (else its last known moment, and never before
    its start)."""
    import numpy as np

    from analyzers.request_metrics import request_metrics

    req = run.requests
    if not len(req):
        return ClientSpans(req.assign(_start=[], _end=[]), 0)
    m = request_metrics(run)[["request_id", "t_first_output_ns", "t_last_ns", "ttft_ns",
                              "input_tokens", "input_tokens_source", "output_tokens",
                              "output_tokens_source"]]
    f = req.merge(m, on="request_id", how="left")
    send, begun = f["t_send_ns"].to_numpy(), f["t_start_ns"].to_numpy()
    start = np.where(send >= 0, send, begun)
    end = f["t_end_ns"].to_numpy()
    end = np.where(end >= 0, end, f["t_last_ns"].fillna(-1).to_numpy().astype(np.int64))
    f = f.assign(_start=start, _end=np.maximum(end, start))
    keep = f["_start"] >= 0
    return ClientSpans(f[keep].reset_index(drop=True), int((~keep).sum()))
