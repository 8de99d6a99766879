"""A run group: one directory holding N run directories of one configuration (repeats) and
``group.json``, the small manifest that says so.

::

    GROUP/
      group.json     {"format": "servescope.run-group", "version": 1, "arm": "A",
                      "runs": ["r01", "r02", "r03"], "order": [["A", "r01"], ["B", "r01"], ...],
                      "restart_between": false, "created_wall_ns": ..., "command_line": [...]}
      r01/ r02/ r03/ run directories (each a complete run directory of its own)

``runs`` are the group's repeats in the order they ran. ``order`` is the whole interleaved
schedule when the group is one arm of an A/B (``[arm, run]`` pairs, across the sibling
groups), so a reader can see that the arms alternated. Every run directory stays readable on
its own (``summarize GROUP/r01``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servescope.jsonio import dumps, loads
from servescope.rundir.atomic import atomic_write
from servescope.rundir.layout import RunDirError

__all__ = ["GROUP_FILE", "GROUP_FORMAT", "RunGroup", "is_group", "read_group", "repeat_name",
           "write_group"]

GROUP_FILE = "group.json"
GROUP_FORMAT = "servescope.run-group"
GROUP_VERSION = 1


def repeat_name(i: int) -> str:
    """The directory name of repeat ``i`` (0-based): r01, r02, ..."""
    return f"r{i + 1:02d}"


@dataclass(slots=True)
class RunGroup:
    path: Path
    runs: list[str]
    arm: str = ""
    order: list[list[str]] = field(default_factory=list)
    restart_between: bool = False
    created_wall_ns: int = field(default_factory=time.time_ns)
    command_line: list[str] = field(default_factory=list)

    def run_dirs(self) -> list[Path]:
        return [self.path / r for r in self.runs]

    def to_json(self) -> dict[str, Any]:
        return {"format": GROUP_FORMAT, "version": GROUP_VERSION, "arm": self.arm,
                "runs": list(self.runs), "order": [list(o) for o in self.order],
                "restart_between": self.restart_between,
                "created_wall_ns": self.created_wall_ns, "command_line": list(self.command_line)}


def is_group(path: Path) -> bool:
    return (path / GROUP_FILE).is_file()


def write_group(group: RunGroup) -> None:
    group.path.mkdir(parents=True, exist_ok=True)
    atomic_write(group.path / GROUP_FILE, dumps(group.to_json(), indent=True))


def read_group(path: Path) -> RunGroup:
    """RunDirError for a missing, unreadable or malformed ``group.json``."""
    f = path / GROUP_FILE
    try:
        data = loads(f.read_bytes())
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{f}: not a readable run group ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != GROUP_FORMAT:
        raise RunDirError(f"{f}: not a servescope run group")
    if int(data.get("version", 0)) > GROUP_VERSION:
        raise RunDirError(f"{f}: run group version {data.get('version')} is newer than this "
                          f"servescope reads ({GROUP_VERSION}); upgrade servescope")
    runs = data.get("runs")
    if not isinstance(runs, list) or not all(isinstance(r, str) and r and "/" not in r
                                             and r not in (".", "..") for r in runs):
        raise RunDirError(f"{f}: 'runs' must be a list of run directory names")
    order = data.get("order") or []
    return RunGroup(path, list(runs), str(data.get("arm") or ""),
                    [[str(x) for x in o] for o in order if isinstance(o, list)],
                    bool(data.get("restart_between", False)),
                    int(data.get("created_wall_ns", 0)),
                    [str(x) for x in data.get("command_line") or []])
