"""The records' naming rule (style.md: units live in names): every numeric field of every
record kind ends in its unit, or is an identifier or a count named as such."""

from __future__ import annotations

import dataclasses
import typing

import pytest

import servescope.records as records

UNIT_SUFFIXES = ("_ns", "_bytes", "_frac", "_w", "_mj", "_mhz", "_c", "_per_s", "_total",
                 "_tokens", "_chars", "_s", "_bits", "_samples")
# identifiers, indexes, counts and codes: numbers without a physical unit
UNITLESS = {"request_id", "worker_id", "step", "conversation_id", "turn", "group_id",
            "status", "prompt_tokens_planned", "max_tokens", "gpu_index", "mig_gpu_instance",
            "clock_event_reasons", "metric_id", "pid", "tid", "rank", "device", "stream",
            "correlation_id", "repeats", "ranks", "devices", "value",
            "ev_kind", "ev_tokens_cum", "samples", "in_flight", "line", "arch",
            "mig_gpu_instances"}  # event kinds (codes); cumulative token counts
KINDS = [getattr(records, name) for name in records.__all__
         if dataclasses.is_dataclass(getattr(records, name))]


def _numeric(tp: object) -> bool:
    args = typing.get_args(tp)
    return tp in (int, float) or any(a in (int, float) for a in args)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_numeric_fields_carry_their_unit(kind: type) -> None:
    hints = typing.get_type_hints(kind)
    bad = [f.name for f in dataclasses.fields(kind)
           if _numeric(hints[f.name]) and f.name not in UNITLESS
           and not f.name.endswith(UNIT_SUFFIXES)]
    assert bad == [], f"{kind.__name__}: numeric fields without a unit in the name: {bad}"


def test_every_kind_is_there() -> None:
    names = {k.__name__ for k in KINDS}
    assert {"RequestRecord", "MetricSample", "GpuSample", "GpmSample", "StackSample",
            "KernelEvent", "SpanRecord", "BandwidthSample"} <= names
