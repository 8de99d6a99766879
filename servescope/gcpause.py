"""The cyclic garbage collector paused around bulk work that makes no reference cycles."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["gc_paused"]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Turn the cyclic collector off for the block (and back on only if it was on): millions
    of short-lived containers trigger collections that walk every live object, though they
    make no cycles (measured: reading a 1 M-event trace 1.4x slower with it on; analysing
    it 1.4-1.7 s against 1.3-1.4 s)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
