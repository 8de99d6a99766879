"""The loopback reference server ("refserver"): ground truth for the client's metrics.

- :mod:`~profiler.selftest.schedule`: :class:`RefSchedule`, what the server does (timing,
  tokens, faults).
- :mod:`~profiler.selftest.refserver`: :func:`make_app`, the aiohttp application.
- :mod:`~profiler.selftest.serve`: the command line (``python -m profiler.selftest.serve``).
- :mod:`~profiler.selftest.process`: :func:`start_refserver`, the server in a subprocess.
- :mod:`~profiler.selftest.truth`: the per-request truth records served at ``/_truth``.
"""

from profiler.selftest.process import RefServerError, RefServerHandle, start_refserver
from profiler.selftest.refserver import make_app
from profiler.selftest.schedule import RefSchedule

__all__ = ["RefSchedule", "RefServerError", "RefServerHandle", "make_app", "start_refserver"]
