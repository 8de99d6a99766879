"""Plain-language descriptions of what was run, from a run's manifest.

Returns unescaped text: the callers escape it where it goes into HTML.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from servescope.rundir.manifest import Manifest

__all__ = ["engine_name", "length_text", "started_text", "what_was_run", "workload_text"]


def length_text(spec: Any) -> str:
    """A length distribution (``{"kind": "uniform", "min": 32, "max": 256, ...}``) in words."""
    if not isinstance(spec, Mapping):
        return "?"
    kind = spec.get("kind")
    if kind == "fixed":
        return f"{spec.get('mean')}"
    if kind == "uniform":
        return f"{spec.get('min')}–{spec.get('max')} (uniform)"
    if kind in ("normal", "lognormal"):
        return f"mean {spec.get('mean')} ± {spec.get('stdev')} ({kind})"
    return str(kind or "?")


def _arrival(a: Mapping[str, Any]) -> str:
    kind = a.get("kind")
    if kind == "closed":
        return f"closed loop, {a.get('concurrency')} concurrent requests"
    rate = a.get("rate_per_s")
    rate_text = f"{rate:g} req/s" if isinstance(rate, int | float) else "? req/s"
    if kind == "gamma":
        return f"open loop, gamma arrivals at {rate_text} (burstiness {a.get('burstiness')})"
    return f"open loop, {kind} arrivals at {rate_text}"


def workload_text(w: Mapping[str, Any]) -> str:
    """The workload in one sentence: arrivals (or the sweep), prompts, length of the run."""
    parts: list[str] = []
    steps = w.get("steps") or []
    if len(steps) > 1:
        loads = ", ".join(_arrival(s).split(", ", 1)[-1] for s in steps)
        parts.append(f"a sweep of {len(steps)} steps ({loads})")
    elif isinstance(w.get("arrival"), Mapping):
        parts.append(_arrival(w["arrival"]))
    d = w.get("dataset")
    if isinstance(d, Mapping):
        kind = d.get("kind", "?")
        if kind == "synthetic":
            parts.append(f"synthetic prompts of {length_text(d.get('input_len'))} tokens, "
                         f"{length_text(d.get('output_len'))} output tokens asked for")
        elif kind == "shared_prefix":
            parts.append(f"shared-prefix prompts ({d.get('num_groups')} groups, prefix "
                         f"{d.get('prefix_len')} tokens)")
        else:
            parts.append(f"{kind} dataset")
    if w.get("num_requests"):
        parts.append(f"{w['num_requests']} requests")
    if w.get("duration_s"):
        parts.append(f"{w['duration_s']:g} s")
    if w.get("warmup_requests") or w.get("warmup_s"):
        parts.append(f"warm-up {w.get('warmup_requests') or 0} requests / "
                     f"{w.get('warmup_s') or 0:g} s (excluded)")
    return "; ".join(parts) if parts else "workload not recorded"


def engine_name(m: Manifest) -> str:
    eng = m.engine
    if eng is not None and eng.name:
        how = "attached to" if eng.attached else "started"
        return f"{eng.name} ({how} by servescope)"
    if m.imported is not None:
        return f"imported from {m.imported.tool or '?'}"
    return "an OpenAI-compatible server"


def started_text(m: Manifest) -> str:
    if m.started_wall_ns <= 0:
        return "unknown time"
    t = dt.datetime.fromtimestamp(m.started_wall_ns / 1e9, tz=dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def what_was_run(m: Manifest) -> str:
    """One sentence: model, engine, endpoint, workload, host."""
    t = m.target
    model = t.get("model") or "an unnamed model"
    endpoint = t.get("endpoint") or "?"
    stream = "streaming" if t.get("stream", True) else "not streaming"
    host = m.host
    gpus = ", ".join(g.name or "GPU" for g in m.gpus.devices) or "no GPU"
    return (f"Model {model} served by {engine_name(m)}, {endpoint} endpoint ({stream}); "
            f"{workload_text(m.workload)}. Client on {host.hostname or '?'} "
            f"({host.cpu_count} CPUs, {gpus}), started {started_text(m)}, "
            f"status {m.status}.")
