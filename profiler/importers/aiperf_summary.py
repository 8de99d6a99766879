"""The ``profile_export_aiperf.json`` beside an AIPerf ``profile_export.jsonl``.

Optional: it gives the AIPerf version, the endpoint and load settings, the command line and
AIPerf's own aggregates (each metric's ``avg``, ``p50`` … in display units). Without it the
import goes on with what the JSONL alone says, and a warning.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profiler.importers.errors import ImportFormatError
from profiler.importers.fields import Where, load_json
from servescope.redact import redact_argv

__all__ = ["AiperfSummary", "read_summary", "summary_path"]

_DETAILS = ("aiperf_version", "schema_version", "benchmark_id", "start_time", "end_time",
            "was_cancelled", "is_complete", "error_summary")


@dataclass(frozen=True, slots=True)
class AiperfSummary:
    path: Path | None = None
    version: str = "unknown"
    endpoint: str = ""
    status: str = "complete"
    seed: int = -1
    target: Mapping[str, Any] = field(default_factory=dict)
    workload: Mapping[str, Any] = field(default_factory=dict)
    command_line: tuple[str, ...] = ()
    aggregates: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def summary_path(jsonl: Path) -> Path:
    """AIPerf's naming: ``profile_export.jsonl`` → ``profile_export_aiperf.json``;
    ``--profile-export-prefix foo``: ``foo.jsonl`` → ``foo.json``."""
    if jsonl.name == "profile_export.jsonl":
        return jsonl.with_name("profile_export_aiperf.json")
    return jsonl.with_suffix(".json")


def _command(run_info: object) -> tuple[str, ...]:
    if not isinstance(run_info, dict) or not isinstance(run_info.get("cli_command"), str):
        return ()
    try:
        return tuple(redact_argv(shlex.split(run_info["cli_command"])))
    except ValueError:
        return tuple(redact_argv([run_info["cli_command"]]))


def _parse(path: Path, data: dict[str, Any]) -> AiperfSummary:
    w = Where(path)
    config = w.obj(data.get("input_config") or {})
    endpoint = w.at("input_config").obj(config.get("endpoint") or {})
    models = w.at("input_config").obj(config.get("models") or {}).get("items") or []
    names = [m.get("name") for m in models if isinstance(m, dict)]
    urls = endpoint.get("urls") or []
    run_info = data.get("run_info")
    seed = run_info.get("random_seed") if isinstance(run_info, dict) else None
    complete = data.get("is_complete") is not False and data.get("was_cancelled") is not True
    kind = str(endpoint.get("type", ""))
    return AiperfSummary(
        path=path, version=str(data.get("aiperf_version", "unknown")),
        endpoint="chat" if "chat" in kind else ("completions" if kind else ""),
        status="complete" if complete else "interrupted",
        seed=seed if isinstance(seed, int) else -1,
        target={"url": urls[0] if urls else "", "urls": urls,
                "model": names[0] if names else "", "endpoint": kind,
                "stream": bool(endpoint.get("streaming", False)),
                "use_server_token_count": bool(endpoint.get("use_server_token_count", False))},
        workload={"phases": config.get("phases", []), "datasets": config.get("datasets", [])},
        command_line=_command(run_info),
        aggregates={k: v for k, v in data.items() if isinstance(v, dict) and "unit" in v},
        details={k: data[k] for k in _DETAILS if k in data},
    )


def read_summary(jsonl: Path) -> AiperfSummary:
    """The summary beside ``jsonl``, or an empty one with a warning saying why."""
    path = summary_path(jsonl)
    if not path.is_file():
        return AiperfSummary(warnings=(
            f"no {path.name} beside {jsonl.name}: AIPerf's version, settings and own "
            "aggregates are unknown",))
    try:
        data = Where(path).obj(load_json(path, "AIPerf's profile_export_aiperf.json"))
        return _parse(path, data)
    except ImportFormatError as exc:
        return AiperfSummary(warnings=(f"{path.name} was not read: {exc}",))
