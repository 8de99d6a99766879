"""``python -m profiler.selftest`` runs the reference server (same flags as ``.serve``)."""

from profiler.selftest.serve import main

raise SystemExit(main())
