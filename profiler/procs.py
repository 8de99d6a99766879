"""Process-tree helpers on Linux ``/proc``: find every descendant of a process and tell
whether any is still alive (an engine such as vLLM runs as three or more processes)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["alive", "descendants", "pgid_of", "proc_title"]


def _ppid_map() -> dict[int, int]:
    out: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may contain spaces or parentheses
        rest = stat[stat.rfind(")") + 2 :].split()
        if len(rest) > 1:
            out[int(entry.name)] = int(rest[1])
    return out


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid`` (children, grandchildren, …), not ``pid`` itself."""
    children: dict[int, list[int]] = {}
    for child, parent in _ppid_map().items():
        children.setdefault(parent, []).append(child)
    out: list[int] = []
    stack = [pid]
    while stack:
        for c in children.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat[stat.rfind(")") + 2 :].split()[0]
    return state not in ("Z", "X")


def proc_title(pid: int) -> str:
    """The process's command line as shown by ps (its title if it set one)."""
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()
    return ""


def pgid_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
