"""The event frame every kernel analysis takes: one pandas DataFrame per trace (any number
of ranks), its columns the fields of :class:`servescope.records.kernels.KernelEvent`
(extra columns such as ``pid``/``tid`` are allowed; :func:`check_events` drops them all but
the ingestion's ``cat``, so the analysis' copies of the frame stay narrow), ``kind`` one of
:class:`~servescope.records.kernels.TraceEventKind`'s values."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from servescope.records.kernels import KernelEvent, TraceEventKind

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EVENT_COLUMNS", "GPU_KINDS", "KernelFrameError", "check_events", "nan_to_none"]

EVENT_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(KernelEvent))
# what runs on the GPU: kernels and the copy/fill engines' work
GPU_KINDS: tuple[str, ...] = (TraceEventKind.KERNEL.value, TraceEventKind.MEMCPY.value,
                              TraceEventKind.MEMSET.value)
_INT_COLUMNS = ("rank", "t_start_ns", "dur_ns", "device", "stream", "correlation_id", "step")


class KernelFrameError(ValueError):
    """An event frame the analysis cannot read (the message is one line)."""


def check_events(events: pd.DataFrame) -> pd.DataFrame:
    """``events``' schema columns (and ``cat`` when present) checked, integer columns as int64
    and ``kind`` as plain strings; :class:`KernelFrameError` naming what is wrong otherwise."""
    import pandas as pd

    if not isinstance(events, pd.DataFrame):
        raise KernelFrameError(f"kernel events must be a DataFrame, not {type(events).__name__}")
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise KernelFrameError(f"kernel events lack columns: {', '.join(missing)}")
    keep = [*EVENT_COLUMNS, *(["cat"] if "cat" in events.columns else [])]
    out = events[keep]  # a new frame (setting its columns leaves ``events`` as it was)
    for col in _INT_COLUMNS:
        try:
            out[col] = out[col].astype("int64")
        except (TypeError, ValueError) as exc:
            raise KernelFrameError(f"kernel events: column {col!r} is not integer ({exc})"
                                   ) from None
    for col in ("kind", "name", "cat"):
        if col in out.columns:
            out[col] = _shared_strings(out[col].astype(str))
    bad = sorted(set(out["kind"].unique()) - {k.value for k in TraceEventKind})
    if bad:
        raise KernelFrameError(f"kernel events: unknown kind(s) {', '.join(bad[:5])}")
    if (out["dur_ns"] < 0).any():
        raise KernelFrameError("kernel events: negative dur_ns")
    return out.reset_index(drop=True)


def _shared_strings(values: pd.Series) -> pd.Series:
    """``values`` as a numpy object column with one string object per distinct value: the
    analysis filters and reads these columns many times, which costs a copy of every string
    for pyarrow-backed strings and a pointer for these (the order of strings is the same)."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return pd.Series(np.asarray(uniques, dtype=object)[codes], index=values.index,
                     dtype=object, name=values.name)


def nan_to_none(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` with NaN floats as None (strict JSON has no NaN)."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}
