"""Bottleneck rules: each reads a :class:`RuleContext` and returns a finding or None.

The registry :data:`RULES` is the list the finder runs, in order; a rule that raises is a
bug, reported as a finding of its own rather than hiding the others.
"""

from __future__ import annotations

from collections.abc import Callable

from analyzers.bottlenecks.context import RuleContext, build_context
from analyzers.bottlenecks.engine_rules import (
    batch_cap_queueing,
    kv_cache_saturation,
    prefix_cache_low,
)
from analyzers.bottlenecks.gpu_rules import (
    gpu_compute_bound_prefill,
    gpu_idle_client_limited,
    gpu_launch_bound,
    gpu_memory_bound_decode,
    gpu_memory_pressure,
    gpu_throttling,
)
from analyzers.bottlenecks.kernel_rules import (
    kernel_communication_share,
    kernel_decode_dominated,
    kernel_launch_bound,
)
from analyzers.bottlenecks.request_rules import (
    client_behind,
    engine_errors,
    output_mismatch,
    prefill_interference,
)
from analyzers.findings import SEVERITY_ORDER, Finding, Severity

__all__ = ["RULES", "Rule", "RuleContext", "build_context", "find_bottlenecks"]

Rule = Callable[[RuleContext], Finding | None]

RULES: dict[str, Rule] = {
    "engine_errors": engine_errors,
    "kv_cache_saturation": kv_cache_saturation,
    "batch_cap_queueing": batch_cap_queueing,
    "prefill_interference": prefill_interference,
    "prefix_cache_low": prefix_cache_low,
    "client_behind": client_behind,
    "gpu_launch_bound": gpu_launch_bound,
    "gpu_memory_bound_decode": gpu_memory_bound_decode,
    "gpu_compute_bound_prefill": gpu_compute_bound_prefill,
    "gpu_throttling": gpu_throttling,
    "gpu_memory_pressure": gpu_memory_pressure,
    "gpu_idle_client_limited": gpu_idle_client_limited,
    "kernel_launch_bound": kernel_launch_bound,
    "kernel_decode_dominated": kernel_decode_dominated,
    "kernel_communication_share": kernel_communication_share,
    "output_mismatch": output_mismatch,
}


def find_bottlenecks(ctx: RuleContext) -> list[Finding]:
    """Every rule's finding, most severe first."""
    out: list[Finding] = []
    for name, rule in RULES.items():
        try:
            f = rule(ctx)
        except Exception as exc:  # noqa: BLE001 - a rule bug must not hide the other findings
            f = Finding(rule=name, severity=Severity.INFO, title=f"rule {name} failed",
                        summary=f"{type(exc).__name__}: {exc}", evidence=(),
                        window_start_ns=ctx.start_ns, window_end_ns=ctx.end_ns,
                        requests_affected=0, request_ids=(), actions=())
        if f is not None:
            out.append(f)
    return sorted(out, key=lambda f: SEVERITY_ORDER[f.severity])
