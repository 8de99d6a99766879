"""What differs between the manifests of two runs: the setting next to the changed number.

Keys are dotted paths. Compared:

- ``servescope_version``, ``schema_version``, ``seed``, ``workers``;
- ``target.*`` (model, endpoint, stream, per-chunk usage) except ``url``;
- ``host.*`` (CPU model and count, memory, OS, Python, hostname), the GPUs'
  ``gpus.driver_version`` and each one's ``gpus.devices[i].name / memory_bytes``;
- ``workload.*``: every field of the workload spec, flattened;
- the engine: ``engine.name`` and any other descriptive field the run recorded under
  ``manifest.engine`` (e.g. a version), and the engine's command line split into
  ``engine.env.VAR`` (``VAR=value`` given through ``env``), ``engine.arg[i]`` (positional
  arguments: the launcher and the model) and ``engine.flag.--name`` (a flag's value, ``true``
  for a switch);
- ``client.timestamps``, the ``imported`` section and any section this version does not
  know, flattened.

Left out because they differ between any two runs: ``run_id``, times, the clock anchor,
``status`` and ``warnings`` (validity checks cover them), servescope's own ``command_line``
(its ``--out`` differs; the workload and engine command carry the settings), the target URL and
the engine's ``--host``/``--port`` and ``base_url`` (a fresh port per run), and what the engine
recorded about one particular start (``processes``, ``ready_s``, ``stop``, ``scrapes``,
``metrics`` endpoints, ``warnings``, ``error``, ``server_pid``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from servescope.rundir.manifest import Manifest
from servescope.rundir.manifest_check import encode

__all__ = ["MISSING", "ManifestChange", "engine_settings", "flatten", "manifest_diff"]

MISSING = "(absent)"
_ENGINE_VOLATILE = frozenset({"processes", "ready_s", "stop", "scrapes", "base_url", "metrics",
                              "warnings", "error", "server_pid", "command", "readiness_paths"})
_VOLATILE_FLAGS = frozenset({"--host", "--port"})
_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


@dataclass(frozen=True, slots=True)
class ManifestChange:
    """One key whose value differs; values as compact JSON text, :data:`MISSING` if absent."""

    key: str
    baseline: str
    candidate: str


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def flatten(value: Any, prefix: str) -> dict[str, Any]:
    """Dotted keys of nested dicts; lists of dicts are indexed (``gpus[0].name``), other
    lists are kept whole."""
    out: dict[str, Any] = {}
    if isinstance(value, Mapping):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = value
    return out


def engine_settings(command: Sequence[str]) -> dict[str, str]:
    """``engine.env.*``, ``engine.arg[i]`` and ``engine.flag.*`` of an engine command line."""
    from servescope.engines._argv import strip_wrappers

    out: dict[str, str] = {}
    args = strip_wrappers(command)
    for tok in command[:len(command) - len(args)]:
        if m := _ASSIGN.match(tok):
            out[f"engine.env.{m.group(1)}"] = m.group(2)
    pos = 0
    i = 0
    while i < len(args):
        tok = args[i]
        if tok.startswith("-") and len(tok) > 1:
            flag, eq, value = tok.partition("=")
            if not eq:
                nxt = args[i + 1] if i + 1 < len(args) else None
                if nxt is not None and not (nxt.startswith("-") and not _is_number(nxt)):
                    value, i = nxt, i + 1
                else:
                    value = "true"
            if flag not in _VOLATILE_FLAGS:
                out[f"engine.flag.{flag}"] = value
        else:
            out[f"engine.arg[{pos}]"] = tok
            pos += 1
        i += 1
    return out


def _is_number(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def _settings(m: Manifest) -> dict[str, Any]:
    out: dict[str, Any] = {
        "servescope_version": m.servescope_version,
        "schema_version": m.schema_version,
        "seed": m.seed,
        "workers": m.workers,
    }
    out.update(flatten({k: v for k, v in m.target.items() if k != "url"}, "target"))
    host = {"hostname": m.host.hostname, "os": m.host.os, "python": m.host.python,
            "cpu_model": m.host.cpu_model, "cpu_count": m.host.cpu_count,
            "memory_bytes": m.host.memory_bytes}
    out.update(flatten(host, "host"))
    out.update(flatten(encode(m.gpus), "gpus"))
    out.update(flatten(m.workload, "workload"))
    if m.client.timestamps:  # its per-step CPU and wall time are measurements, not settings
        out["client.timestamps"] = m.client.timestamps
    sections = {**m.extra, "imported": encode(m.imported) if m.imported else None}
    for section, value in sections.items():
        if value is not None:
            out.update(flatten(value, section))
    if m.engine is not None:
        engine = encode(m.engine)
        out.update(flatten({k: v for k, v in engine.items() if k not in _ENGINE_VOLATILE},
                           "engine"))
        if m.engine.command:
            out.update(engine_settings(m.engine.command))
    return out


def manifest_diff(baseline: Manifest, candidate: Manifest) -> tuple[ManifestChange, ...]:
    """The settings that differ, sorted by key (module doc: what is compared)."""
    a, b = _settings(baseline), _settings(candidate)
    changes = []
    for key in sorted(a.keys() | b.keys()):
        va = _text(a[key]) if key in a else MISSING
        vb = _text(b[key]) if key in b else MISSING
        if va != vb:
            changes.append(ManifestChange(key, va, vb))
    return tuple(changes)
