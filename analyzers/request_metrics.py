"""Per-request metrics, one row per request, derived from the raw timeline.

Every latency is on the client's monotonic clock, in nanoseconds (float, NaN where not
defined). Definitions (docs/metrics.md has the full text):

- ``ttft_ns``: first output event − ``t_send_ns``. An output event is an OUTPUT event with
  text (chars > 0) or new tokens; the chat role chunk, the usage chunk, finish-only chunks and
  empty deltas are not output.
- ``e2e_ns``: last output event − send. ``e2e_done_ns``: arrival of ``[DONE]`` − send.
- ``output_tokens``: the server's final ``usage.completion_tokens`` (source ``"usage"``),
  else the largest per-chunk cumulative count (``"chunk_usage"``), else the number of output
  events (``"events"``, a guess: flagged).
- ``tpot_ns``: ``(e2e − ttft) / (output_tokens − 1)`` when ``output_tokens > 1``.
- ``schedule_lag_ns``: send − intended send (open loop only); ``ttft_from_intended_ns`` and
  ``e2e_from_intended_ns`` measure from the intended send time, so time a request spent
  waiting for a late client counts (coordinated omission).
- ``input_tokens``: ``usage.prompt_tokens`` (``"usage"``), else the workload's planned
  prompt length (``"planned"``), else ``-1`` (``"unknown"``).
- per-request ITL aggregates from :mod:`analyzers.itl`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from analyzers.itl import ITL_REQUEST_COLUMNS, ITLSamples, itl_samples
from analyzers.timeline import (
    IntArray,
    Selection,
    Timeline,
    as_timeline,
    int_column,
    interval_ns,
)
from servescope.records import UNKNOWN

if TYPE_CHECKING:
    import pandas as pd

    from servescope.rundir.reader import RunData

__all__ = [
    "INPUT_PLANNED",
    "INPUT_UNKNOWN",
    "INPUT_USAGE",
    "OUTPUT_CHUNK_USAGE",
    "OUTPUT_CLIENT",
    "OUTPUT_EVENTS",
    "OUTPUT_USAGE",
    "REQUEST_METRIC_COLUMNS",
    "request_metrics",
]

OUTPUT_USAGE = "usage"
OUTPUT_CHUNK_USAGE = "chunk_usage"
OUTPUT_EVENTS = "events"
OUTPUT_CLIENT = "client_tokenizer"  # no usage at all: the client's tokenizer counted
INPUT_USAGE = "usage"
INPUT_PLANNED = "planned"
INPUT_UNKNOWN = "unknown"

REQUEST_METRIC_COLUMNS: tuple[str, ...] = (
    "request_id", "phase", "step", "outcome", "endpoint",
    "t_intended_ns", "t_start_ns", "t_send_ns", "t_first_output_ns", "t_last_output_ns",
    "t_last_ns",
    "ttft_ns", "e2e_ns", "e2e_done_ns", "tpot_ns",
    "output_tokens", "output_tokens_source", "input_tokens", "input_tokens_source",
    "n_output_events",
    "schedule_lag_ns", "ttft_from_intended_ns", "e2e_from_intended_ns",
    *ITL_REQUEST_COLUMNS[1:],
)


def request_metrics(source: RunData | Timeline, *, itl: ITLSamples | None = None) -> pd.DataFrame:
    """One row per request (all phases and outcomes), columns :data:`REQUEST_METRIC_COLUMNS`.

    ``t_last_ns`` is the request's last known moment: the largest of its end, ``[DONE]``,
    last event and send times (``-1`` if none), used for the measurement window. ``itl``
    reuses ITL samples already computed from the same timeline.
    """
    import pandas as pd

    tl = as_timeline(source)
    req = tl.requests
    n = tl.n_requests
    out = tl.select(tl.ev_output)
    first, last, n_out = out.first(), out.last(), out.count()
    send = int_column(req, "t_send_ns")
    # when the client began the request (before any HTTP work): the peers' "start";
    # runs written before t_start_ns existed have only t_send_ns
    start = (int_column(req, "t_start_ns") if "t_start_ns" in req.columns
             else send.copy())
    start = np.where(start < 0, send, start)
    intended = int_column(req, "t_intended_ns")

    every = tl.select()
    out_tokens, out_source = _output_tokens(tl, every, n_out)
    in_tokens, in_source = _input_tokens(req)
    tpot = np.full(n, np.nan)
    many = out_tokens > 1
    tpot[many] = interval_ns(last, first)[many] / (out_tokens[many] - 1)
    t_last = np.maximum.reduce([int_column(req, "t_end_ns"), int_column(req, "t_done_ns"),
                                every.last(), send])

    df = pd.DataFrame({
        "request_id": int_column(req, "request_id"),
        "phase": req["phase"].to_numpy(),
        "step": int_column(req, "step"),
        "outcome": req["outcome"].to_numpy(),
        "endpoint": req["endpoint"].to_numpy(),
        "t_intended_ns": intended,
        "t_start_ns": start,
        "t_send_ns": send,
        "t_first_output_ns": first,
        "t_last_output_ns": last,
        "t_last_ns": t_last,
        "ttft_ns": interval_ns(first, send),
        "e2e_ns": interval_ns(last, send),
        "e2e_done_ns": interval_ns(int_column(req, "t_done_ns"), send),
        "tpot_ns": tpot,
        "output_tokens": out_tokens,
        "output_tokens_source": out_source,
        "input_tokens": in_tokens,
        "input_tokens_source": in_source,
        "n_output_events": n_out,
        "schedule_lag_ns": interval_ns(send, intended),
        "ttft_from_intended_ns": interval_ns(first, intended),
        "e2e_from_intended_ns": interval_ns(last, intended),
    })
    per_request = (itl if itl is not None else itl_samples(tl)).per_request
    for c in ITL_REQUEST_COLUMNS[1:]:
        df[c] = per_request[c].to_numpy()
    return df


def _output_tokens(tl: Timeline, every: Selection,
                   n_out: IntArray) -> tuple[IntArray, np.ndarray]:
    usage = int_column(tl.requests, "usage_completion_tokens")
    chunk_max = np.full(tl.n_requests, UNKNOWN, dtype=np.int64)
    if every.pos.size:
        starts = np.flatnonzero(every.starts)
        chunk_max[every.pos[starts]] = np.maximum.reduceat(tl.ev_tokens_cum, starts)
    tokens = np.where(usage >= 0, usage, np.where(chunk_max >= 0, chunk_max, n_out))
    req = tl.requests
    client = (req["tokens_cum_source"].to_numpy() == OUTPUT_CLIENT
              if "tokens_cum_source" in req.columns else np.zeros(tl.n_requests, np.bool_))
    src = np.where(usage >= 0, OUTPUT_USAGE, np.where(
        chunk_max >= 0, np.where(client, OUTPUT_CLIENT, OUTPUT_CHUNK_USAGE), OUTPUT_EVENTS))
    return tokens.astype(np.int64), src


def _input_tokens(req: pd.DataFrame) -> tuple[IntArray, np.ndarray]:
    usage = int_column(req, "usage_prompt_tokens")
    planned = int_column(req, "prompt_tokens_planned")
    tokens = np.where(usage >= 0, usage, np.where(planned >= 0, planned, UNKNOWN))
    src = np.where(usage >= 0, INPUT_USAGE,
                   np.where(planned >= 0, INPUT_PLANNED, INPUT_UNKNOWN))
    return tokens.astype(np.int64), src
