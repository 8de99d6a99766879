"""The metrics ``compare``, ``gate`` and history mode know, by name, with units and direction.

A name is what a user writes in a budgets file (``ttft_p99``) and what every result carries.
Each metric has one :class:`Kind`, which decides how its noise is judged:

- ``PERCENTILE``: a client latency percentile over successful measured requests (ns);
  bootstrap CI of the relative change, Mann–Whitney U on the per-request values.
- ``RATE``: a throughput over the run's window (per second); the window is cut into equal
  slices and the slices' rates are the samples (batch means).
- ``PROPORTION``: a fraction of measured requests; Fisher's exact test and a CI of the
  difference (percentage points), since a relative change of a rate near 0 means little.
- ``SERVER_PERCENTILE``: a percentile of the engine's own histogram over the client's window
  (ns); known only to its bucket, so its "interval" is the range the buckets allow.
- ``ENGINE``: an engine gauge or counter summary (KV usage, preemptions, prefix-cache hit
  rate); one number per run with no noise estimate: shown, never judged.
- ``BANDWIDTH``: a bench run's bandwidth (``bw_<bench>``, bytes/s, analyzers/bandwidth.py);
  bootstrap CI of the median's relative change over the timed repeats, Mann–Whitney U.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import StrEnum

from analyzers.bandwidth import BANDWIDTH_BENCHES

__all__ = [
    "CATALOG",
    "Direction",
    "Kind",
    "MetricSpec",
    "UnknownMetricError",
    "get_metric",
]


class Direction(StrEnum):
    LOWER = "lower"  # lower is better (latency, errors)
    HIGHER = "higher"  # higher is better (throughput, goodput)


class Kind(StrEnum):
    PERCENTILE = "percentile"
    RATE = "rate"
    PROPORTION = "proportion"
    SERVER_PERCENTILE = "server_percentile"
    ENGINE = "engine"
    BANDWIDTH = "bandwidth"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """``unit`` is the unit of the metric's values (``ns``, ``tok/s``, ``req/s``, ``frac``,
    ``count``); ``source`` names where it comes from (a request-metrics column, a summary
    field, an engine-window field or a canonical histogram); ``percentile`` is set for the
    percentile kinds. ``needs_slo``: only defined when an SLO is given."""

    name: str
    label: str
    kind: Kind
    direction: Direction
    unit: str
    source: str
    percentile: float | None = None
    needs_slo: bool = False

    @property
    def relative(self) -> bool:
        """Whether a change is a ratio (``b / a − 1``) rather than a difference (``b − a``)."""
        return self.kind in (Kind.PERCENTILE, Kind.RATE, Kind.SERVER_PERCENTILE,
                             Kind.BANDWIDTH)


class UnknownMetricError(ValueError):
    """A metric name not in the catalog; the message lists the valid ones."""


_PCTS = (50.0, 90.0, 99.0)
_LATENCY = (("ttft", "TTFT", "ttft_ns"), ("itl", "ITL (per token)", "itl_per_token_ns"),
            ("tpot", "TPOT", "tpot_ns"), ("e2e", "E2E", "e2e_ns"))
_SERVER = (("server_ttft", "server TTFT", "server_ttft_s"),
           ("server_itl", "server ITL", "server_itl_s"),
           ("server_tpot", "server TPOT", "server_tpot_s"),
           ("server_e2e", "server E2E", "server_e2e_s"),
           ("server_queue", "server queue", "server_queue_s"),
           ("server_prefill", "server prefill", "server_prefill_s"),
           ("server_decode", "server decode", "server_decode_s"))


def _build() -> dict[str, MetricSpec]:
    specs: list[MetricSpec] = []
    for stem, label, src in _LATENCY:
        specs.extend(MetricSpec(f"{stem}_p{q:g}", f"{label} p{q:g}", Kind.PERCENTILE,
                                Direction.LOWER, "ns", src, q) for q in _PCTS)
    specs += [
        MetricSpec("output_throughput", "output tokens/s", Kind.RATE, Direction.HIGHER,
                   "tok/s", "output_token_throughput_per_s"),
        MetricSpec("request_throughput", "requests/s", Kind.RATE, Direction.HIGHER, "req/s",
                   "request_throughput_per_s"),
        MetricSpec("goodput", "good requests/s", Kind.RATE, Direction.HIGHER, "req/s",
                   "good_requests_per_s", needs_slo=True),
        MetricSpec("error_rate", "error rate", Kind.PROPORTION, Direction.LOWER, "frac",
                   "error_rate"),
        MetricSpec("goodput_frac", "good fraction", Kind.PROPORTION, Direction.HIGHER, "frac",
                   "good_fraction", needs_slo=True),
    ]
    for stem, label, hist in _SERVER:
        specs.extend(MetricSpec(f"{stem}_p{q:g}", f"{label} p{q:g}", Kind.SERVER_PERCENTILE,
                                Direction.LOWER, "ns", hist, q) for q in _PCTS)
    specs += [
        MetricSpec("kv_usage_mean", "KV cache usage mean", Kind.ENGINE, Direction.LOWER,
                   "frac", "kv_usage_mean"),
        MetricSpec("kv_usage_max", "KV cache usage max", Kind.ENGINE, Direction.LOWER, "frac",
                   "kv_usage_max"),
        MetricSpec("preemptions", "preemptions", Kind.ENGINE, Direction.LOWER, "count",
                   "preemptions"),
        MetricSpec("prefix_cache_hit_rate", "prefix-cache hit rate", Kind.ENGINE,
                   Direction.HIGHER, "frac", "prefix_cache_hit_rate"),
    ]
    specs += [MetricSpec(f"bw_{b}", f"{b} bandwidth", Kind.BANDWIDTH, Direction.HIGHER, "B/s",
                         b) for b in BANDWIDTH_BENCHES]
    return {s.name: s for s in specs}


CATALOG: dict[str, MetricSpec] = _build()


def get_metric(name: str) -> MetricSpec:
    """The spec of ``name``; :class:`UnknownMetricError` naming close matches and all names."""
    spec = CATALOG.get(name)
    if spec is not None:
        return spec
    close = difflib.get_close_matches(name, CATALOG, n=3)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    raise UnknownMetricError(f"unknown metric {name!r}{hint}; valid metrics: "
                             f"{', '.join(CATALOG)}")
