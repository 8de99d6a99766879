"""Runners of the streaming clients compared by the client-ceiling benchmark.

Each runner takes a :class:`~benchmarks.peers.common.CellSpec` (one fresh reference server,
one concurrency) and returns a :class:`~benchmarks.peers.common.CellResult`; it never raises.
``RUNNERS`` maps the names accepted by ``--tools`` to them.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.peers import aiperf, guidellm, nullclient, servescope, vllm_bench
from benchmarks.peers.common import CellResult, CellSpec

__all__ = ["RUNNERS", "Runner", "lookup"]

Runner = Callable[[CellSpec], CellResult]

RUNNERS: dict[str, Runner] = {
    "null": nullclient.run,
    "servescope": servescope.run,
    "servescope-w2": lambda spec: servescope.run_workers(spec, 2),
    "vllm": vllm_bench.run,
    "aiperf": aiperf.run,
    "aiperf-w4": lambda spec: aiperf.run_workers(spec, 4),
    "guidellm": guidellm.run,
}


def lookup(name: str) -> Runner:
    """The runner called ``name``; the error lists the valid names."""
    try:
        return RUNNERS[name]
    except KeyError:
        raise KeyError(f"unknown tool {name!r}; valid: {', '.join(RUNNERS)}") from None
