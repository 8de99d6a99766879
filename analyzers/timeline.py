"""A run's raw timeline as flat numpy arrays: the one input every metric is derived from.

:func:`build_timeline` joins ``events`` to ``requests`` once: each event gets the row of its
request (``ev_pos``), events are ordered by (request row, ``seq``), and each event gets
``ev_new_tokens``, the tokens it adds to the server's cumulative ``usage.completion_tokens``
(``tokens_cum``). Per-request reductions are then segment operations over sorted arrays
(:func:`first_last`, :func:`gaps`), fast for millions of events.

Which events count for which metric is decided by the callers through boolean masks;
:meth:`Timeline.output_mask` is servescope's own rule (docs/metrics.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from profiler.records import UNKNOWN, EventKind
from profiler.rundir.layout import RunDirError

if TYPE_CHECKING:
    import pandas as pd

    from profiler.rundir.reader import RunData

__all__ = [
    "BoolArray",
    "FloatArray",
    "Gaps",
    "IntArray",
    "Timeline",
    "as_timeline",
    "build_timeline",
    "first_last",
    "gaps",
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
    same request carried (0 before the first), floored at 0.
    """

    requests: pd.DataFrame
    ev_pos: IntArray
    ev_t_ns: IntArray
    ev_kind: IntArray
    ev_chars: IntArray
    ev_tokens_cum: IntArray
    ev_new_tokens: IntArray
    warnings: tuple[str, ...] = ()

    @property
    def n_requests(self) -> int:
        return len(self.requests)

    def output_mask(self) -> BoolArray:
        """servescope's output event: an OUTPUT event with text (chars > 0) or new tokens.

        The chat role chunk (ROLE), the usage chunk (USAGE), finish-only chunks (FINISH)
        and OUTPUT events with neither text nor new tokens (empty deltas) are not output.
        """
        out: BoolArray = (self.ev_kind == OUTPUT) & ((self.ev_chars > 0)
                                                     | (self.ev_new_tokens > 0))
        return out

    def kind_mask(self, *kinds: int) -> BoolArray:
        return np.isin(self.ev_kind, np.asarray(kinds, dtype=np.int64))


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
    ev_rid = np.asarray(events["request_id"].to_numpy(), dtype=np.int64)
    warnings: list[str] = []
    if sorted_ids.size:
        idx = np.minimum(np.searchsorted(sorted_ids, ev_rid), sorted_ids.size - 1)
        found: BoolArray = sorted_ids[idx] == ev_rid
        pos = order[idx].astype(np.int64)
    else:
        found = np.zeros(ev_rid.size, dtype=np.bool_)
        pos = np.zeros(ev_rid.size, dtype=np.int64)
    if not found.all():
        warnings.append(f"{int((~found).sum())} events belong to no request and were ignored")
    seq = np.asarray(events["seq"].to_numpy(), dtype=np.int64)[found]
    pos = pos[found]

    def col(name: str) -> IntArray:
        values: IntArray = np.asarray(events[name].to_numpy(), dtype=np.int64)
        return values[found]

    t_ns, kind, chars, cum = col("t_ns"), col("kind"), col("chars"), col("tokens_cum")
    if pos.size > 1:
        in_order = (pos[1:] > pos[:-1]) | ((pos[1:] == pos[:-1]) & (seq[1:] >= seq[:-1]))
        if not in_order.all():
            o = np.lexsort((seq, pos))
            pos, t_ns, kind, chars, cum = pos[o], t_ns[o], kind[o], chars[o], cum[o]
    return Timeline(requests, pos, t_ns, kind, chars, cum, _new_tokens(pos, cum),
                    tuple(warnings))


def _new_tokens(pos: IntArray, cum: IntArray) -> IntArray:
    """Per event: ``cum`` minus the running max of earlier ``cum`` in its request; -1 if none.

    The group-wise running max is one ``maximum.accumulate`` over values offset by
    ``pos * (max + 1)``, which keeps every request's values above all earlier requests'.
    """
    if pos.size == 0:
        return np.empty(0, dtype=np.int64)
    known = cum >= 0
    c0 = np.where(known, cum, 0)
    offset = pos * (int(c0.max()) + 1)
    running = np.maximum.accumulate(c0 + offset) - offset
    prev = np.empty_like(running)
    prev[0] = 0
    prev[1:] = running[:-1]
    prev[_segment_starts(pos)] = 0
    return np.where(known, np.maximum(c0 - prev, 0), UNKNOWN)


def _segment_starts(pos: IntArray) -> BoolArray:
    starts = np.empty(pos.size, dtype=np.bool_)
    if pos.size:
        starts[0] = True
        starts[1:] = pos[1:] != pos[:-1]
    return starts


def first_last(tl: Timeline, mask: BoolArray) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Per request row: (first time, last time, count, event index of the first) of ``mask``.

    Times and indices are ``-1`` for requests with no selected event.
    """
    n = tl.n_requests
    idx = np.flatnonzero(mask)
    p = tl.ev_pos[idx]
    first = np.full(n, UNKNOWN, dtype=np.int64)
    last = np.full(n, UNKNOWN, dtype=np.int64)
    first_idx = np.full(n, UNKNOWN, dtype=np.int64)
    starts = _segment_starts(p)
    ends = np.empty_like(starts)
    if p.size:
        ends[:-1] = starts[1:]
        ends[-1] = True
    first[p[starts]] = tl.ev_t_ns[idx[starts]]
    first_idx[p[starts]] = idx[starts]
    last[p[ends]] = tl.ev_t_ns[idx[ends]]
    count = np.bincount(p, minlength=n).astype(np.int64)
    return first, last, count, first_idx


@dataclass(frozen=True, slots=True)
class Gaps:
    """Gaps between consecutive selected events of the same request.

    ``gap_ns[i]`` ends at event ``event_idx[i]`` of request row ``pos[i]``; sorted by row.
    """

    gap_ns: IntArray
    pos: IntArray
    event_idx: IntArray


def gaps(tl: Timeline, mask: BoolArray) -> Gaps:
    idx = np.flatnonzero(mask)
    p = tl.ev_pos[idx]
    same = p[1:] == p[:-1]
    later = idx[1:][same]
    earlier = idx[:-1][same]
    return Gaps(tl.ev_t_ns[later] - tl.ev_t_ns[earlier], p[1:][same], later)


def segment_max(values: FloatArray, pos: IntArray, n: int) -> FloatArray:
    """Per request row: max of ``values`` (sorted by ``pos``); NaN where it has none."""
    out = np.full(n, np.nan)
    if pos.size:
        starts = np.flatnonzero(_segment_starts(pos))
        out[pos[starts]] = np.maximum.reduceat(values, starts)
    return out


def segment_sum(values: FloatArray | IntArray, pos: IntArray, n: int) -> FloatArray:
    """Per request row: sum of ``values`` (0 where it has none)."""
    return np.bincount(pos, weights=values.astype(np.float64), minlength=n).astype(np.float64)
