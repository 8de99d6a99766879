"""The steady-state window of a run (or of one sweep step): ramp-up and drain left out.

A load test has three phases. While it **ramps up**, the server is filling its batch and a
closed loop's first wave of requests arrives all at once (their prefills collide, so their
TTFTs are not representative). Once the **last request has been sent**, the load only falls:
requests finishing then saw a shrinking batch (**drain**). Between them the offered load is
what the user asked for: the steady state.

Definition (measured requests of one step, sends and ends on the client's clock):

- ``drain_start_ns`` = the last send.
- ``ramp_end_ns`` = the later of (a) the first completion (a closed loop's synchronized first
  wave is over; an open loop's first request has gone through the whole pipeline) and (b) the
  first moment the number of requests in flight reaches 90 % of its median over
  [first send, last send] (the batch has filled up).
- The window is [ramp_end_ns, drain_start_ns]. **Steady requests** are those sent at or
  after ``ramp_end_ns`` that ended at or before ``drain_start_ns`` (so every one of them ran
  entirely under the steady load). Throughput in the window counts completions inside it.
- The window is **found** when it holds at least ``MIN_STEADY_REQUESTS`` steady requests and
  at least ``MIN_STEADY_FRAC`` of the measured ones; otherwise the whole run is used and the
  result says so (a run too short to have a steady state: raise ``--requests``/``--duration``).

Everything here is data: :class:`SteadyWindow` says which window was used and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MIN_STEADY_FRAC", "MIN_STEADY_REQUESTS", "SteadyWindow", "steady_window",
           "whole_load"]

MIN_STEADY_REQUESTS = 20
MIN_STEADY_FRAC = 0.25
FILL_FRAC = 0.9  # "the batch has filled": in flight >= 90 % of its median during the load


@dataclass(frozen=True, slots=True)
class SteadyWindow:
    """The window used for one step's steady-state statistics (monotonic ns).

    ``found`` False: no steady state long enough; ``start_ns``/``end_ns`` are then the whole
    load (first send to last end) and ``steady_ids`` every measured request.
    """

    step: int
    found: bool
    start_ns: int
    end_ns: int
    load_start_ns: int  # first send
    load_end_ns: int  # last end
    ramp_up_ns: int  # start_ns - load_start_ns (0 when not found)
    drain_ns: int  # load_end_ns - end_ns (0 when not found)
    in_flight_median: float
    measured_requests: int
    steady_requests: int
    excluded_ramp_up: int
    excluded_drain: int
    completions_in_window: int
    steady_ids: tuple[int, ...]
    reason: str

    @property
    def window_ns(self) -> int:
        return self.end_ns - self.start_ns


def _in_flight_median(send: np.ndarray, end: np.ndarray, t0: int, t1: int) -> tuple[float, int]:
    """Median (time-weighted) of requests in flight over [t0, t1], and the first moment the
    count reaches FILL_FRAC of that median."""
    times = np.concatenate([send, end])
    deltas = np.concatenate([np.ones(send.size, np.int64), -np.ones(end.size, np.int64)])
    order = np.lexsort((-deltas, times))  # at equal times, arrivals before departures
    times, deltas = times[order], deltas[order]
    level = np.cumsum(deltas)
    # piecewise-constant level on [times[i], times[i+1]); clip to [t0, t1]
    nxt = np.append(times[1:], times[-1])
    lo, hi = np.clip(times, t0, t1), np.clip(nxt, t0, t1)
    dur = (hi - lo).astype(np.float64)
    if dur.sum() <= 0:
        return float(level.max(initial=0)), t0
    srt = np.argsort(level, kind="stable")
    cum = np.cumsum(dur[srt])
    median = float(level[srt][np.searchsorted(cum, cum[-1] / 2)])
    reach = np.flatnonzero(level >= FILL_FRAC * median)
    return median, int(times[reach[0]]) if reach.size else t0


def steady_window(rows: pd.DataFrame, *, step: int = 0) -> SteadyWindow:
    """The steady-state window of one step's measured requests (see the module docstring)."""
    ids = rows["request_id"].to_numpy().astype(np.int64)
    send = rows["t_send_ns"].to_numpy().astype(np.int64)
    end = rows["t_last_ns"].to_numpy().astype(np.int64)
    sent = send >= 0
    n = int(ids.size)
    if not sent.any():
        return SteadyWindow(step, False, -1, -1, -1, -1, 0, 0, 0.0, n, 0, 0, 0, 0, (),
                            "no measured request was sent")
    ids, send, end = ids[sent], send[sent], np.maximum(end[sent], send[sent])
    load_start, load_end, last_send = int(send.min()), int(end.max()), int(send.max())
    median, filled_ns = _in_flight_median(send, end, load_start, last_send)
    ok = rows["outcome"].to_numpy()[sent] == "success"
    first_done = int(end[ok].min()) if ok.any() else int(end.min())
    ramp_end = max(first_done, filled_ns)
    steady = (send >= ramp_end) & (end <= last_send)
    n_steady = int(steady.sum())

    def whole(reason: str) -> SteadyWindow:
        return SteadyWindow(step, False, load_start, load_end, load_start, load_end, 0, 0,
                            median, n, int(ids.size), 0, 0, int(ids.size),
                            tuple(int(i) for i in ids), reason)

    if not ok.any():
        return whole("no request succeeded; whole run used")
    if ramp_end >= last_send:
        return whole("the load ended before it reached a steady state (the last request was "
                     "sent before the first one finished or the batch filled); whole run used")
    need = max(MIN_STEADY_REQUESTS, int(np.ceil(MIN_STEADY_FRAC * n)))
    if n_steady < need:
        return whole(f"only {n_steady} requests ran entirely in steady state (need {need}); "
                     "whole run used: make the run longer for steady-state numbers")
    done_inside = int(((end >= ramp_end) & (end <= last_send) & ok).sum())
    return SteadyWindow(
        step=step, found=True, start_ns=ramp_end, end_ns=last_send, load_start_ns=load_start,
        load_end_ns=load_end, ramp_up_ns=ramp_end - load_start, drain_ns=load_end - last_send,
        in_flight_median=median, measured_requests=n, steady_requests=n_steady,
        excluded_ramp_up=int((send < ramp_end).sum()),
        excluded_drain=int(((send >= ramp_end) & (end > last_send)).sum()),
        completions_in_window=done_inside,
        steady_ids=tuple(int(i) for i in ids[steady]),
        reason=(f"ramp-up ends at the {_what_ended(ramp_end, first_done)} "
                f"({(ramp_end - load_start) / 1e9:.2f} s after the first send); drain "
                f"starts at the last send ({(load_end - last_send) / 1e9:.2f} s before the "
                f"last end)"),
    )


def _what_ended(ramp_end: int, first_done: int) -> str:
    return "first completion" if ramp_end == first_done else "batch fill"


def whole_load(rows: pd.DataFrame, reason: str) -> SteadyWindow:
    """The whole load of ``rows`` (measured requests of any step) as a window: from the first
    send to the last end, every request in it; ``step`` -1 (a sweep's steps together)."""
    send = rows["t_send_ns"].to_numpy(np.int64)
    last = rows["t_last_ns"].to_numpy(np.int64)
    send = send[send >= 0]
    t0, t1 = (int(send.min()), int(last.max())) if send.size else (-1, -1)
    ids = tuple(int(i) for i in rows["request_id"].to_numpy())
    return SteadyWindow(-1, False, t0, t1, t0, t1, 0, 0, 0.0, len(ids), len(ids), 0, 0,
                        len(ids), ids, reason)
