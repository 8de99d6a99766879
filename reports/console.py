"""The console a command prints its tables on.

On a terminal: rich's own (the terminal's width). Anywhere else (a pipe, a file, a CI log)
there is no width to fit: a narrow console would fold numbers, and a table wider than it
would have its right columns **cut off** (``servescope compare A B | cat`` lost the notes
column mid-word at 120 columns). So the console is :data:`PIPE_WIDTH` columns wide: every
table takes its natural width and every cell stays whole on its line; a long plain line is
not wrapped before that either.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console

__all__ = ["PIPE_WIDTH", "stdout_console"]

PIPE_WIDTH = 1000


def stdout_console(**kwargs: Any) -> Console:
    """A console on stdout (``kwargs`` go to :class:`rich.console.Console`)."""
    if sys.stdout.isatty():
        return Console(**kwargs)
    return Console(width=PIPE_WIDTH, **kwargs)
