"""``servescope run --repeat N`` without ``--restart-between``: one engine start, N runs.

The serving command is started once (its log in ``GROUP/engine/``), and once it is ready each
repeat is an attached run against it (:func:`profiler.engine_run.attach_engine`) into
``GROUP/rNN``; each run's manifest then records the serving command as ``run`` records it
(``engine.command``: ``compare`` lists the engine flags that differ between two groups) and the
engine's PID. The engine is stopped after the last repeat, or when a repeat fails or is
interrupted. Launch-time collectors (``--kernels-hook``) need a start per run: use
``--restart-between`` for them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from profiler.repeats import check_empty, run_repeats

if TYPE_CHECKING:
    from profiler.engine_run import EngineOptions, EngineRunResult
    from profiler.loadrun import LoadConfig

__all__ = ["run_kept_engine"]


def _stamp(run_dir: Path, argv: Sequence[str], pid: int) -> None:
    from servescope.redact import redact_argv
    from servescope.rundir.manifest import read_manifest, write_manifest

    m = read_manifest(run_dir)
    if m.engine is not None:
        m.engine.command = redact_argv(list(argv))
        m.engine.server_pid = pid
        write_manifest(run_dir, m)


def run_kept_engine(argv: Sequence[str], opts: EngineOptions, n: int, out: Path, *,
                    make_config: Callable[[str, Path], LoadConfig],
                    command_line: Sequence[str] = (),
                    say: Callable[[str], None] = lambda _m: None) -> list[EngineRunResult]:
    """Start ``argv`` once, run ``n`` repeats against it, stop it (module doc).
    ``EngineRunError`` when the engine does not start or exits during a repeat."""
    from profiler.engine_run import EngineRunError, attach_engine, resolve_engine
    from profiler.launch import EngineExited, EngineNotReady, EngineProcess

    if opts.kernels_hook:
        raise ValueError("--kernels-hook starts the profiler inside the engine at launch: "
                         "use --restart-between with --repeat")
    spec, base_url = resolve_engine(argv, opts)
    check_empty(out)
    engine = EngineProcess(list(argv), out / "engine", env=dict(os.environ))
    say(f"starting {spec.name} once for the {n} repeats")
    try:
        engine.start()
        ready = engine.wait_ready(base_url, spec.readiness_paths, opts.ready_timeout_s,
                                  headers=opts.headers())
        say(f"ready after {ready:.1f} s")
        attach_opts = replace(opts, engine=spec.name, pid=engine.pid)

        def one(run_dir: Path) -> EngineRunResult:
            if (rc := engine.returncode()) is not None:
                raise EngineRunError(f"the engine exited with code {rc} between repeats",
                                     run_dir, engine.tail())
            say(f"repeat {run_dir.name}")
            res = attach_engine(base_url, attach_opts, config=make_config(base_url, run_dir))
            _stamp(run_dir, argv, engine.pid)
            return res

        return run_repeats(n, out, one, command_line=command_line, fresh=False,
                           stop=lambda r: r.status != "complete")
    except (EngineExited, EngineNotReady) as exc:
        raise EngineRunError(str(exc), out, exc.tail) from exc
    finally:
        say("stopping the engine")
        engine.stop(opts.stop_grace_s)
