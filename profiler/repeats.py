"""Repeated runs: one configuration N times into a run group, or several arms interleaved.

:func:`run_repeats` calls ``one_run(run_dir)`` for ``GROUP/r01`` … ``GROUP/rNN`` and writes
``GROUP/group.json`` (``servescope.rundir.group``) after each repeat, so an interrupted group
still lists the repeats it finished. ``servescope run --repeat N`` and ``attach --repeat N``
use it: ``one_run`` is a whole ``run`` (the engine started and stopped: ``--restart-between``)
or an ``attach`` to the live server.

:func:`run_interleaved` runs several arms (A, B, …) in an interleaved order, one repeat of
each arm per round: ``alternate`` (A B A B …) or ``shuffled`` (each round in a seeded random
order), into ``OUT/<arm>/rNN``, one run group per arm whose ``order`` records the whole
schedule. Slow drift of the machine (a neighbour starting, thermals) then lands on both arms
alike instead of on whichever ran second.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from servescope.rundir.group import RunGroup, repeat_name, write_group
from servescope.rundir.layout import RunDirError

__all__ = ["ORDERS", "check_empty", "interleaved_order", "run_interleaved", "run_repeats"]

ORDERS = ("alternate", "shuffled")
_T = TypeVar("_T")


def check_empty(out: Path) -> None:
    """RunDirError when ``out`` exists and holds anything."""
    if out.exists() and any(out.iterdir()):
        raise RunDirError(f"{out} already exists and is not empty; choose another --out")


def run_repeats(n: int, out: Path, one_run: Callable[[Path], _T], *,
                restart_between: bool = False, command_line: Sequence[str] = (),
                stop: Callable[[_T], bool] = lambda _r: False, fresh: bool = True
                ) -> list[_T]:
    """``one_run`` for each of ``n`` repeats into the group ``out``; stops early when
    ``stop(result)`` is true (an interrupted or failed repeat). ``fresh``: ``out`` must be
    empty (the caller checked it and put something there itself, otherwise)."""
    if n < 1:
        raise ValueError(f"--repeat must be at least 1, not {n}")
    if fresh:
        check_empty(out)
    group = RunGroup(out, [], restart_between=restart_between,
                     command_line=list(command_line))
    results: list[_T] = []
    for i in range(n):
        name = repeat_name(i)
        res = one_run(out / name)
        group.runs.append(name)
        group.order.append(["", name])
        write_group(group)
        results.append(res)
        if stop(res):
            break
    return results


def interleaved_order(arms: Sequence[str], n: int, order: str = "alternate",
                      seed: int = 0) -> list[tuple[str, int]]:
    """(arm, repeat index) in the order they run: ``n`` rounds, each arm once per round."""
    if order not in ORDERS:
        raise ValueError(f"order {order!r}: use {' or '.join(ORDERS)}")
    rng = random.Random(seed)
    out: list[tuple[str, int]] = []
    for i in range(n):
        rnd = list(arms)
        if order == "shuffled":
            rng.shuffle(rnd)
        out += [(a, i) for a in rnd]
    return out


def run_interleaved(arms: Mapping[str, Callable[[Path], _T]], n: int, out: Path, *,
                    order: str = "alternate", seed: int = 0,
                    between: Callable[[str, int], None] | None = None,
                    stop: Callable[[_T], bool] = lambda _r: False,
                    command_line: Sequence[str] = ()) -> dict[str, list[_T]]:
    """Each arm ``n`` times, interleaved, into ``out/<arm>`` (one run group per arm).
    ``between(arm, i)`` is called before each run (e.g. to wait for a quiet machine); the
    schedule ends early after a run for which ``stop(result)`` is true."""
    if n < 1:
        raise ValueError(f"repeats must be at least 1, not {n}")
    for a in arms:
        if not a or "/" in a or a in (".", ".."):
            raise ValueError(f"arm name {a!r} is not a directory name")
    check_empty(out)
    schedule = interleaved_order(list(arms), n, order, seed)
    groups = {a: RunGroup(out / a, [], arm=a, command_line=list(command_line)) for a in arms}
    done: list[list[str]] = []
    results: dict[str, list[_T]] = {a: [] for a in arms}
    for arm, i in schedule:
        if between is not None:
            between(arm, i)
        name = repeat_name(i)
        results[arm].append(arms[arm](out / arm / name))
        done.append([arm, name])
        g = groups[arm]
        g.runs.append(name)
        for grp in groups.values():
            grp.order = [list(x) for x in done]
            if grp.runs:
                write_group(grp)
        if stop(results[arm][-1]):
            break
    return results
