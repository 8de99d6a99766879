"""The few engine gauges the live view shows while a run goes on (KV-cache usage, running,
waiting), pulled from each raw Prometheus page without the full parse.

The scraper keeps pages unparsed during the run (the full parse costs the engine's CPU);
this reads only the lines of three families, with one regular expression each, and puts the
values in shared memory for the parent's display. What is recorded is unaffected: the tables
are still built from the journaled pages with prometheus_client's parser. A page this cannot
read (JSON formats, a missing family) leaves the value NaN: the view shows "–".
"""

from __future__ import annotations

import math
import multiprocessing as mp
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from servescope.engines.base import Signal
from servescope.engines.spec import EngineSpec

__all__ = ["LIVE_SIGNALS", "LiveGauges", "live_families"]

LIVE_SIGNALS: tuple[Signal, ...] = (Signal.KV_CACHE_USAGE_FRAC, Signal.REQUESTS_RUNNING,
                                    Signal.REQUESTS_WAITING)
_NUM = r"([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|NaN|[-+]?Inf))"


@dataclass(frozen=True, slots=True)
class _Spec:
    families: tuple[str, ...]
    scale: float
    aggregate: str


def live_families(engine: EngineSpec) -> dict[str, tuple[tuple[str, ...], float, str]]:
    """Signal → (families, scale, aggregate) for the live signals the engine spec maps
    (plain, picklable data for the scraper child)."""
    specs: Mapping[Signal, Any] = engine.signals
    out: dict[str, tuple[tuple[str, ...], float, str]] = {}
    for sig in LIVE_SIGNALS:
        spec = specs.get(sig)
        if spec is not None and not spec.labels:
            out[sig.value] = (tuple(spec.families), float(spec.scale), str(spec.aggregate))
    return out


class LiveGauges:
    """Shared values, written by the scraper process, read by the live view."""

    def __init__(self, families: Mapping[str, tuple[tuple[str, ...], float, str]]) -> None:
        self._specs = {k: _Spec(*v) for k, v in families.items()}
        self._values = mp.get_context("spawn").Array("d", [math.nan] * len(LIVE_SIGNALS),
                                                      lock=False)
        self._patterns = {
            k: [re.compile(rb"^" + re.escape(f.encode()) + rb"(?:\{[^}]*\})? " + _NUM.encode(),
                           re.MULTILINE) for f in spec.families]
            for k, spec in self._specs.items()}

    def __getstate__(self) -> dict[str, Any]:
        return {"specs": self._specs, "values": self._values, "patterns": self._patterns}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._specs, self._values = state["specs"], state["values"]
        self._patterns = state["patterns"]

    def update_from_page(self, body: bytes) -> None:
        for i, sig in enumerate(LIVE_SIGNALS):
            key = sig.value
            if key not in self._specs:
                continue
            spec = self._specs[key]
            for pattern in self._patterns[key]:  # the first family present wins
                found = [float(m) for m in pattern.findall(body)]
                if found:
                    agg = (sum(found) if spec.aggregate == "sum" else max(found)
                           if spec.aggregate == "max" else sum(found) / len(found))
                    self._values[i] = agg * spec.scale
                    break

    def values(self) -> dict[Signal, float]:
        return {sig: float(self._values[i]) for i, sig in enumerate(LIVE_SIGNALS)}

    @staticmethod
    def of(values: Sequence[float]) -> dict[Signal, float]:
        return dict(zip(LIVE_SIGNALS, values, strict=True))
