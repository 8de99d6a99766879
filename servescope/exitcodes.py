"""servescope's exit codes, one set for every command (docs/reliability.md, docs/analysis.md).

A stop signal ends a command with 128 + its number (:data:`EXIT_INTERRUPTED` for Ctrl-C,
143 for SIGTERM, 129 for SIGHUP)."""

from __future__ import annotations

__all__ = ["EXIT_FAIL", "EXIT_INTERRUPTED", "EXIT_INVALID", "EXIT_OK", "EXIT_PASS",
           "EXIT_REGRESSION", "EXIT_USAGE"]

EXIT_OK = 0  # done as asked
EXIT_FAIL = 1  # the run could not go on (the engine died, a full disk, ...)
EXIT_USAGE = 2  # bad input: options, a run directory that cannot be read; nothing started
EXIT_INTERRUPTED = 130  # 128 + SIGINT

# the gate's names for the same codes: pass, a regression beyond a budget, invalid input
EXIT_PASS = EXIT_OK
EXIT_REGRESSION = EXIT_FAIL
EXIT_INVALID = EXIT_USAGE
