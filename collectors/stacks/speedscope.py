"""py-spy's speedscope files → the threads and hottest functions of one process.

A speedscope file (https://www.speedscope.app/file-format-schema.json) as ``py-spy record
--format speedscope`` writes it: ``shared.frames`` (``name``, ``file``, ``line``) and one
``sampled`` profile per thread, named ``Thread TID "NAME"``, whose ``samples`` are stacks of
frame indices, outermost first (innermost last). With ``--threads`` py-spy adds a root frame
``thread (TID): NAME`` to every stack; it is dropped here. Without ``--idle`` a sample is a
tick at which the thread was running (not waiting), so a thread's samples over the process's
ticks is how busy it was.

A function is (name, file): its samples at any of its lines are one. ``total``: samples with
the function anywhere on the stack (once per sample, recursion or not); ``self``: samples
with it innermost; ``line``: the line most of its samples were at.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from servescope.records.stacks import HotFrame, StackThread

__all__ = ["HOT_PER_THREAD", "Profile", "SpeedscopeError", "ThreadProfile", "hot_frames",
           "read_speedscope", "threads_of"]

HOT_PER_THREAD = 30  # functions kept per thread: the top by total and the top by self samples
_THREAD = re.compile(r'(?:Process \d+ )?Thread (0x[0-9a-fA-F]+|\d+)(?: "(.*)")?\s*$')
_THREAD_FRAME = re.compile(r"thread \((?:0x[0-9a-fA-F]+|\d+)\)(?::.*)?")


class SpeedscopeError(ValueError):
    """A file that is not a speedscope profile py-spy could have written (one line)."""


@dataclass(frozen=True, slots=True)
class Frame:
    function: str
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class ThreadProfile:
    tid: int
    thread_name: str
    stacks: tuple[tuple[int, ...], ...]  # frame indices, outermost first


@dataclass(frozen=True, slots=True)
class Profile:
    frames: tuple[Frame, ...]
    threads: tuple[ThreadProfile, ...]

    @property
    def samples(self) -> int:
        return sum(len(t.stacks) for t in self.threads)


def read_speedscope(path: Path) -> Profile:
    """The profile in ``path``; :class:`SpeedscopeError` (naming the file) for one that is
    not JSON or not py-spy's shape, ``OSError`` when unreadable."""
    try:
        data = orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as exc:
        raise SpeedscopeError(f"{path}: not JSON ({exc})") from None
    try:
        return _profile(data)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise SpeedscopeError(f"{path}: not a speedscope profile ({type(exc).__name__}: "
                              f"{exc})") from None


def _profile(data: Any) -> Profile:
    raw = data["shared"]["frames"]
    frames = tuple(Frame(str(f["name"]), str(f.get("file") or ""), int(f.get("line") or 0))
                   for f in raw)
    drop = {i for i, f in enumerate(frames) if not f.file and _THREAD_FRAME.fullmatch(
        f.function)}
    threads = []
    for k, prof in enumerate(data["profiles"]):
        m = _THREAD.search(str(prof.get("name", "")))
        tid, name = (int(m.group(1), 0), m.group(2) or "") if m else (-1 - k, "")
        stacks = []
        for sample in prof["samples"]:
            stack = tuple(int(i) for i in sample if int(i) not in drop)
            if any(not 0 <= i < len(frames) for i in stack):
                raise IndexError(f"frame index out of range in profile {k}")
            stacks.append(stack)
        threads.append(ThreadProfile(tid, name, tuple(stacks)))
    return Profile(frames, tuple(threads))


def threads_of(profile: Profile, pid: int, role: str, ticks: int) -> list[StackThread]:
    """One row per thread; ``active_frac`` = samples / ``ticks`` (the process's sampling
    ticks), at most 1."""
    denom = max(ticks, max((len(t.stacks) for t in profile.threads), default=0), 1)
    return [StackThread(pid, role, t.tid, t.thread_name, len(t.stacks),
                        len(t.stacks) / denom) for t in profile.threads]


def hot_frames(profile: Profile, pid: int, role: str, top: int = HOT_PER_THREAD
               ) -> list[HotFrame]:
    """Per thread, the ``top`` functions by total samples and the ``top`` by self samples
    (their union), hottest first by total samples."""
    out: list[HotFrame] = []
    for t in profile.threads:
        n = len(t.stacks)
        if not n:
            continue
        total: Counter[tuple[str, str]] = Counter()
        self_: Counter[tuple[str, str]] = Counter()
        lines: dict[tuple[str, str], Counter[int]] = {}
        for stack in t.stacks:
            seen: set[tuple[str, str]] = set()
            for i in stack:
                f = profile.frames[i]
                key = (f.function, f.file)
                lines.setdefault(key, Counter())[f.line] += 1
                seen.add(key)
            total.update(seen)
            if stack:
                leaf = profile.frames[stack[-1]]
                self_[(leaf.function, leaf.file)] += 1
        keep = {k for k, _ in total.most_common(top)} | {k for k, _ in self_.most_common(top)}
        rows = sorted(keep, key=lambda k: (-total[k], -self_[k], k))
        out.extend(HotFrame(pid, role, t.tid, t.thread_name, fn, file,
                            lines[(fn, file)].most_common(1)[0][0], self_[(fn, file)],
                            total[(fn, file)], self_[(fn, file)] / n, total[(fn, file)] / n)
                   for fn, file in rows)
    return out
