"""A run's raw timeline as flat numpy arrays: the one input every metric is derived from.

:func:`build_timeline` joins ``events`` to ``requests`` once: each event gets the row of its
request (``ev_pos``), events are ordered by (request row, ``seq``), and each event gets
``ev_new_tokens``, the tokens it adds to the server's cumulative ``usage.completion_tokens``
(``tokens_cum``), and ``ev_output``, servescope's output-event rule. Which events count for
a metric is a boolean mask; :meth:`Timeline.select` turns one into a :class:`Selection`,
whose per-request reductions (first, last, count, gaps) are segment operations over sorted
arrays, fast for millions of events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from servescope.records import UNKNOWN, EventKind
from servescope.rundir.layout import RunDirError

if TYPE_CHECKING:
    import pandas as pd

    from servescope.rundir.reader import RunData

__all__ = [
    "FINISH",
    "OUTPUT",
    "BoolArray",
    "FloatArray",
    "IntArray",
    "Selection",
    "Timeline",
    "as_timeline",
    "build_timeline",
    "int_column",
    "interval_ns",
    "segment_max",
    "segment_sum",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

OUTPUT = int(EventKind.OUTPUT)
FINISH = int(EventKind.FINISH)


@dataclass(frozen=True, slots=True)
class Timeline:
    """Events of a run ordered by (request row, seq), aligned with ``requests`` rows.

    ``ev_tokens_cum`` and ``ev_new_tokens`` are ``-1`` where the event carried no usage.
    ``ev_new_tokens`` is ``tokens_cum`` minus the largest count any earlier event of the
    same request carried (0 before the first), floored at 0. ``ev_output`` marks
    servescope's output events: OUTPUT events with text (chars > 0) or new tokens; the chat
    role chunk (ROLE), the usage chunk (USAGE), finish-only chunks (FINISH) and OUTPUT events
    with neither text nor new tokens (empty deltas) are not output. ``ev_lag_ns`` is the
    client's lag for each event (socket read − kernel arrival; ``-1`` where unknown, and
    empty for a timeline built without it).
    """

    requests: pd.DataFrame
    ev_pos: IntArray
    ev_t_ns: IntArray
    ev_kind: IntArray
    ev_chars: IntArray
    ev_tokens_cum: IntArray
    ev_new_tokens: IntArray
    ev_output: BoolArray
    warnings: tuple[str, ...] = ()
    ev_lag_ns: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def n_requests(self) -> int:
        return len(self.requests)

    def kind_mask(self, *kinds: int) -> BoolArray:
        mask = np.zeros(self.ev_kind.size, dtype=np.bool_)
        for k in kinds:
            mask |= self.ev_kind == k
        return mask

    def select(self, mask: BoolArray | None = None) -> Selection:
        """The events where ``mask`` is true (all events for ``None``)."""
        if mask is None:
            return Selection(self.n_requests, None, self.ev_pos, self.ev_t_ns)
        return Selection(self.n_requests, mask, self.ev_pos[mask], self.ev_t_ns[mask])


class Selection:
    """Some events of a timeline, still ordered by (request row, seq).

    ``values(a)`` picks the selected entries of a per-event array ``a``. Per-request results
    are arrays over request rows with ``-1`` (ints) or NaN (floats) for requests without a
    selected event. Gaps are between consecutive selected events of the same request; each
    gap belongs to its later event, so ``values(a)[sel.later]`` aligns with ``gap_ns``.
    """

    __slots__ = ("_mask", "_start_idx", "later", "n_requests", "pos", "starts", "t_ns")

    def __init__(self, n_requests: int, mask: BoolArray | None, pos: IntArray,
                 t_ns: IntArray) -> None:
        self.n_requests = n_requests
        self._mask = mask
        self.pos = pos
        self.t_ns = t_ns
        self.starts = _segment_starts(pos)
        self.later: BoolArray = ~self.starts
        self._start_idx = np.flatnonzero(self.starts)

    def values(self, per_event: IntArray) -> IntArray:
        return per_event if self._mask is None else per_event[self._mask]

    def subset(self, mask: BoolArray) -> Selection:
        """The selected events where ``mask`` (over this selection) is true."""
        if self._mask is None:
            full = mask
        else:
            full = self._mask.copy()
            full[full] = mask
        return Selection(self.n_requests, full, self.pos[mask], self.t_ns[mask])

    def first(self, values: IntArray | None = None) -> IntArray:
        """Per request: the first selected event's time (or entry of ``values``)."""
        src = self.t_ns if values is None else values
        out = np.full(self.n_requests, UNKNOWN, dtype=np.int64)
        out[self.pos[self._start_idx]] = src[self._start_idx]
        return out

    def last(self) -> IntArray:
        out = np.full(self.n_requests, UNKNOWN, dtype=np.int64)
        if self.pos.size:
            end_idx = np.append(self._start_idx[1:] - 1, self.pos.size - 1)
            out[self.pos[end_idx]] = self.t_ns[end_idx]
        return out

    def count(self) -> IntArray:
        out = np.zeros(self.n_requests, dtype=np.int64)
        out[self.pos[self._start_idx]] = np.diff(np.append(self._start_idx, self.pos.size))
        return out

    def gap_ns(self) -> IntArray:
        if self.pos.size == 0:
            return np.empty(0, dtype=np.int64)
        return (self.t_ns[1:] - self.t_ns[:-1])[self.later[1:]]

    def gap_pos(self) -> IntArray:
        return self.pos[self.later]


def int_column(requests: pd.DataFrame, name: str) -> IntArray:
    """An integer column of the request table as int64, ``-1`` for missing values."""
    col = requests[name]
    return np.asarray(col.fillna(UNKNOWN).to_numpy(), dtype=np.int64)


def interval_ns(end_ns: IntArray, start_ns: IntArray) -> FloatArray:
    """``end - start`` in float ns where both are known (>= 0), NaN elsewhere.

    Differences are taken in int64 first: monotonic timestamps can exceed 2**53.
    """
    known = (end_ns >= 0) & (start_ns >= 0)
    out = np.full(end_ns.shape, np.nan)
    out[known] = (end_ns[known] - start_ns[known]).astype(np.float64)
    return out


def as_timeline(source: RunData | Timeline) -> Timeline:
    return source if isinstance(source, Timeline) else build_timeline(source)


def build_timeline(run: RunData) -> Timeline:
    """Join the run's events to its requests (raises :class:`RunDirError` on duplicate ids)."""
    requests = run.requests.reset_index(drop=True)
    events = run.events
    rid = int_column(requests, "request_id")
    order = np.argsort(rid, kind="stable")
    sorted_ids = rid[order]
    dup = sorted_ids[1:] == sorted_ids[:-1]
    if dup.any():
        raise RunDirError(f"request_id {int(sorted_ids[1:][dup][0])} appears more than once "
                          f"in {run.path}; per-request metrics need unique ids")

    def col(name: str) -> IntArray:
        return np.asarray(events[name].to_numpy(), dtype=np.int64)

    pos, found = _event_rows(col("request_id"), sorted_ids, order)
    seq, t_ns, kind, chars, cum = (col(c) for c in ("seq", "t_ns", "kind", "chars",
                                                    "tokens_cum"))
    # runs written before the client recorded its lag have no such column
    lag = col("lag_ns") if "lag_ns" in events.columns else np.full(t_ns.size, -1, np.int64)
    warnings: list[str] = []
    if found is not None:
        warnings.append(f"{int((~found).sum())} events belong to no request and were ignored")
        pos, seq, t_ns, kind, chars, cum, lag = (a[found] for a in (pos, seq, t_ns, kind,
                                                                    chars, cum, lag))
    if pos.size > 1:
        in_order = (pos[1:] > pos[:-1]) | ((pos[1:] == pos[:-1]) & (seq[1:] >= seq[:-1]))
        if not in_order.all():
            o = np.lexsort((seq, pos))
            pos, t_ns, kind, chars, cum, lag = (pos[o], t_ns[o], kind[o], chars[o], cum[o],
                                                lag[o])
    new = _new_tokens(pos, cum)
    output = (kind == OUTPUT) & ((chars > 0) | (new > 0))
    return Timeline(requests, pos, t_ns, kind, chars, cum, new, output, tuple(warnings), lag)


def _event_rows(ev_rid: IntArray, sorted_ids: IntArray,
                order: IntArray) -> tuple[IntArray, BoolArray | None]:
    """Request row of each event, and which events have a request (``None``: all do).

    Events come in runs of one request id; each run is looked up once.
    """
    if ev_rid.size == 0:
        return np.empty(0, dtype=np.int64), None
    run_starts = np.append(0, np.flatnonzero(ev_rid[1:] != ev_rid[:-1]) + 1)
    lengths = np.diff(np.append(run_starts, ev_rid.size))
    run_ids = ev_rid[run_starts]
    if sorted_ids.size == 0:
        return np.zeros(ev_rid.size, dtype=np.int64), np.zeros(ev_rid.size, dtype=np.bool_)
    idx = np.minimum(np.searchsorted(sorted_ids, run_ids), sorted_ids.size - 1)
    run_found = sorted_ids[idx] == run_ids
    pos = np.repeat(order[idx].astype(np.int64), lengths)
    return pos, None if run_found.all() else np.repeat(run_found, lengths)


def _new_tokens(pos: IntArray, cum: IntArray) -> IntArray:
    """Per event: ``cum`` minus the running max of earlier ``cum`` in its request; -1 if none.

    Usually counts never decrease within a request and the running max is the previous
    count; otherwise the group-wise running max is one ``maximum.accumulate`` over values
    offset by ``pos * (max + 1)``, which keeps every request above all earlier ones.
    """
    if pos.size == 0 or int(cum.max()) < 0:
        return np.full(pos.size, UNKNOWN, dtype=np.int64)
    starts = _segment_starts(pos)
    c0 = np.maximum(cum, 0)
    step = np.empty_like(c0)
    step[0] = c0[0]
    np.subtract(c0[1:], c0[:-1], out=step[1:])
    step[starts] = c0[starts]
    if (step < 0).any():
        offset = pos * (int(c0.max()) + 1)
        running = np.maximum.accumulate(c0 + offset) - offset
        step[1:] = c0[1:] - running[:-1]
        step[starts] = c0[starts]
        np.maximum(step, 0, out=step)
    step[cum < 0] = UNKNOWN
    return step


def _segment_starts(pos: IntArray) -> BoolArray:
    starts = np.empty(pos.size, dtype=np.bool_)
    if pos.size:
        starts[0] = True
        np.not_equal(pos[1:], pos[:-1], out=starts[1:])
    return starts


def segment_max(values: FloatArray, pos: IntArray, n: int) -> FloatArray:
    """Per request row: max of ``values`` (sorted by ``pos``); NaN where it has none."""
    out = np.full(n, np.nan)
    if pos.size:
        starts = np.flatnonzero(_segment_starts(pos))
        out[pos[starts]] = np.maximum.reduceat(values, starts)
    return out


def segment_sum(values: FloatArray | IntArray, pos: IntArray, n: int) -> FloatArray:
    """Per request row: sum of ``values`` (sorted by ``pos``); 0 where it has none."""
    out = np.zeros(n)
    if pos.size:
        starts = np.flatnonzero(_segment_starts(pos))
        out[pos[starts]] = np.add.reduceat(values, starts)
    return out
