"""What the live view shows of a running load, aggregated over the client's workers."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Progress"]

@dataclass(slots=True)
class Progress:
    """Aggregated live counters over all workers (what the live view shows)."""

    step: int = 0
    steps: int = 1
    sent: int = 0
    done: int = 0
    errors: int = 0
    in_flight: int = 0
    planned: int | None = None
    recent_ttft_ns: list[int] = field(default_factory=list)
    recent_itl_ns: list[int] = field(default_factory=list)
    output_tokens: int = 0
    chunks: int = 0  # stream chunks received, in flight requests' included
    engine: dict[str, float] = field(default_factory=dict)  # live gauges: signal → value
