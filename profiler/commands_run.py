"""``servescope run`` and ``servescope attach`` as plain functions returning an exit code.

Both run under the same protection: stop signals handled (:mod:`profiler.signals`: Ctrl-C,
SIGTERM and a hangup stop the run cleanly, exit 128 + the signal), standard streams that
survive a closed terminal (:mod:`profiler.outstreams`), a guardian process that stops what
servescope started if servescope itself is killed (:mod:`profiler.guardian`), and for ``run``
a child subreaper, so a daemon the engine double-forks is still found and stopped. Secrets
from the command line and the environment are registered before anything is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from profiler import signals
from profiler.cli_workload import WorkloadOptions

if TYPE_CHECKING:
    from profiler.engine_run import EngineOptions, EngineRunResult
    from profiler.loadrun import LoadConfig
    from servescope.engines.spec import EngineSpec

__all__ = ["attach_command", "resolve_api_key", "run_command"]

from servescope.exitcodes import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE


def _err(console: Console, msg: str) -> None:
    console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False)


@contextlib.contextmanager
def _protected(argv: Sequence[str], *, subreaper: bool) -> Iterator[None]:
    from profiler.guardian import guarded
    from profiler.outstreams import forgiving_std_streams
    from profiler.procs import set_child_subreaper
    from servescope.redact import register_secrets, secrets_in

    register_secrets(secrets_in(argv, os.environ))
    if subreaper:
        set_child_subreaper()  # Linux; elsewhere daemons of the engine are reported only
    with forgiving_std_streams(), signals.handled(), guarded():
        yield


def resolve_api_key(opts: WorkloadOptions, spec: EngineSpec | None,
                    command: Sequence[str]) -> str | None:
    """The key servescope sends to the server: the one in the variable the user named with
    ``--api-key-env``, else the one the serving command makes the server require, else
    ``OPENAI_API_KEY``."""
    if opts.api_key_env and (key := os.environ.get(opts.api_key_env)):
        return key
    if spec is not None and (key := spec.served_api_key(command, os.environ)):
        return key
    return os.environ.get("OPENAI_API_KEY") or None


def _model_for(opts: WorkloadOptions, url: str, api_key: str | None,
               spec: EngineSpec | None = None) -> str:
    from profiler.discovery import DiscoveryError, discover_model

    if opts.model:
        return opts.model
    try:
        return discover_model(url, api_key)
    except DiscoveryError as exc:
        if spec is not None and not spec.lists_models:
            raise DiscoveryError(f"{spec.display_name} does not list its models ({exc}); "
                                 "pass --model") from None
        raise


def fit_to_engine(opts: WorkloadOptions, spec: EngineSpec, command: Sequence[str],
                  note: Callable[[str], None]) -> WorkloadOptions:
    """The workload's request options for this engine: OpenAI extensions it refuses (HTTP
    422) are not sent, and a model it does not list is taken from its command; each change
    is said through ``note``."""
    changes: dict[str, Any] = {}
    rejected = set(spec.rejected_request_fields)
    if "ignore_eos" in rejected and opts.ignore_eos:
        changes["ignore_eos"] = False
        note(f"{spec.display_name} refuses ignore_eos (HTTP 422), so it is not sent: outputs "
             "may end at an end-of-sequence token before max_tokens")
    if "continuous_usage_stats" in rejected and opts.per_chunk_usage:
        changes["per_chunk_usage"] = False
        note(f"{spec.display_name} refuses stream_options.continuous_usage_stats (HTTP 422), "
             "so it is not sent: token counts per event are not reported")
    if not opts.model and not spec.lists_models and (model := spec.served_model(command)):
        changes["model"] = model
        note(f"model: {model} (from the command: {spec.display_name} does not list its "
             "models; --model overrides)")
    return dataclasses.replace(opts, **changes) if changes else opts


def _note(console: Console) -> Callable[[str], None]:
    return lambda text: console.print(text, markup=False, highlight=False)


def _report_end(console: Console, run_dir: Path, status: str, warnings: list[str]) -> None:
    console.print(f"run directory: [bold]{escape(str(run_dir))}[/] ({status})",
                  highlight=False)
    for w in warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)


def _interrupted_by(console: Console) -> None:
    import signal

    if (sig := signals.user_signal()) is not None:
        console.print(f"stopped by {signal.Signals(sig).name}", markup=False, highlight=False)


def attach_command(url: str, opts: WorkloadOptions, eopts: EngineOptions, out: Path,
                   argv: list[str], *, pid: int | None = None, repeat: int = 1,
                   vs: str | None = None, order: str = "alternate") -> int:
    """``repeat`` > 1: that many runs into the run group ``out`` (``out/r01`` …). ``vs``: a
    second server (B): both arms ``repeat`` times, interleaved in rounds (``order``), into
    the run groups ``out/A`` and ``out/B``."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        with _protected(argv, subreaper=False):
            if vs is not None:
                return _interleaved(console, repeat, out, argv, order, opts.seed, {
                    "A": lambda d: _attach(console, url, opts, eopts, d, argv, pid),
                    "B": lambda d: _attach(console, vs, opts, eopts, d, argv, None)})
            if repeat != 1:
                return _repeated(console, repeat, out, argv, lambda d: _attach(
                    console, url, opts, eopts, d, argv, pid))
            return _attach(console, url, opts, eopts, out, argv, pid)
    except KeyboardInterrupt:  # after the run was recorded, or before it began
        return signals.exit_code(EXIT_INTERRUPTED)


def _attach(console: Console, url: str, opts: WorkloadOptions,  # noqa: PLR0917
            eopts: EngineOptions, out: Path, argv: list[str], pid: int | None) -> int:
    from collectors.base import CollectorUnavailable
    from collectors.client.target import TargetError
    from profiler.collection import prepare
    from profiler.discovery import DiscoveryError
    from profiler.engine_run import attach_engine
    from profiler.scaleout import WorkerError
    from profiler.workloads.spec import WorkloadError
    from reports.live import LiveView
    from servescope.engines.registry import UnknownEngineError, get_spec
    from servescope.rundir.layout import RunDirError

    api_key = resolve_api_key(opts, None, ())
    eopts = dataclasses.replace(eopts, api_key=api_key)
    try:
        spec = get_spec(eopts.engine) if eopts.engine else None
        if spec is not None:
            opts = fit_to_engine(opts, spec, (), _note(console))
        collectors = prepare(eopts)  # a collector this machine cannot run: before anything
        model = _model_for(opts, url, api_key, spec)
        cfg = opts.to_config(url, model, out, argv, api_key=api_key,
                             done_marker=spec.stream_done_marker if spec else True)
    except (CollectorUnavailable, DiscoveryError, TargetError, WorkloadError, ValueError,
            UnknownEngineError) as exc:
        _err(console, str(exc))
        return EXIT_USAGE
    try:
        with LiveView(console, f"{model} @ {url}") as live:
            res = attach_engine(url, eopts, config=cfg, on_progress=live.update,
                                collectors=collectors)
    except (RunDirError, WorkloadError, UnknownEngineError) as exc:
        _err(console, str(exc))
        return EXIT_USAGE
    except WorkerError as exc:
        _err(console, str(exc))
        return EXIT_FAIL
    signals.finished()
    if pid is not None:
        try:
            _record_server_pid(res.run_dir, pid)
        except RunDirError as exc:  # a full disk: the run is recorded; this is a detail
            res.warnings.append(f"server pid not recorded: {exc}")
    return _end_of_run(console, res)


def _record_server_pid(run_dir: Path, pid: int) -> None:
    from servescope.rundir.manifest import EngineInfo, read_manifest, write_manifest

    m = read_manifest(run_dir)
    if m.engine is None:  # (attach always records its engine)
        m.engine = EngineInfo(name="")
    m.engine.server_pid = pid
    write_manifest(run_dir, m)


def run_command(command: list[str], opts: WorkloadOptions, eopts: EngineOptions, out: Path,
                argv: list[str], *, repeat: int = 1, restart_between: bool = False,
                vs: list[str] | None = None, order: str = "alternate") -> int:
    """``repeat`` > 1: that many runs into the run group ``out``, the engine started once
    (``profiler.repeats_engine``) or, with ``restart_between``, once per repeat. ``vs``: a
    second serving command (B): both arms ``repeat`` times, interleaved in rounds, each run
    starting and stopping its engine (two engines need not fit on the machine at once), into
    ``out/A`` and ``out/B``."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        with _protected(argv, subreaper=True):
            if vs is not None:
                return _interleaved(console, repeat, out, argv, order, opts.seed, {
                    "A": lambda d: _run(console, command, opts, eopts, d, argv),
                    "B": lambda d: _run(console, vs, opts, eopts, d, argv)})
            if repeat != 1 and restart_between:
                return _repeated(console, repeat, out, argv, lambda d: _run(
                    console, command, opts, eopts, d, argv), restart_between=True)
            if repeat != 1:
                return _run_kept(console, command, opts, eopts, out, argv, repeat)
            if restart_between:
                _err(console, "--restart-between needs --repeat N (N > 1)")
                return EXIT_USAGE
            return _run(console, command, opts, eopts, out, argv)
    except KeyboardInterrupt:  # after the run was recorded, or before it began
        return signals.exit_code(EXIT_INTERRUPTED)


def _run(console: Console, command: list[str], opts: WorkloadOptions,  # noqa: PLR0917
         eopts: EngineOptions, out: Path, argv: list[str]) -> int:
    from collectors.base import CollectorUnavailable
    from profiler.collection import prepare
    from profiler.commands import model_tokenizer
    from profiler.discovery import DiscoveryError
    from profiler.engine_run import EngineRunError, resolve_engine, run_engine
    from profiler.scaleout import WorkerError
    from profiler.workloads.spec import WorkloadError
    from reports.live import LiveView
    from servescope.engines.registry import UnknownEngineError
    from servescope.rundir.layout import RunDirError

    if opts.tokenizer is None and (tok := model_tokenizer(command)):
        # prompt lengths in the served model's own tokens, not whitespace words
        opts = dataclasses.replace(opts, tokenizer=str(tok))
        console.print(f"tokenizer: {tok} (the served model's; --tokenizer overrides)",
                      markup=False, highlight=False)
    try:
        spec, _ = resolve_engine(command, eopts)
        opts = fit_to_engine(opts, spec, command, _note(console))
        opts.to_config("http://127.0.0.1:1", opts.model or "check", out, argv)  # validate now
        collectors = prepare(eopts)  # a collector this machine cannot run: before the engine
    except (CollectorUnavailable, UnknownEngineError, WorkloadError, ValueError) as exc:
        _err(console, str(exc))
        return EXIT_USAGE
    api_key = resolve_api_key(opts, spec, command)
    eopts = dataclasses.replace(eopts, api_key=api_key)

    def make_config(url: str, run_dir: Path) -> LoadConfig:
        return opts.to_config(url, _model_for(opts, url, api_key, spec), run_dir, argv,
                              api_key=api_key, done_marker=spec.stream_done_marker)

    try:
        with LiveView(console, "run") as live:
            res = run_engine(command, eopts, make_config=make_config, out=out,
                             command_line=argv, on_progress=live.update, collectors=collectors,
                             on_status=lambda m: console.print(m, highlight=False, markup=False))
    except EngineRunError as exc:
        signals.finished()
        _err(console, str(exc))
        if exc.tail:
            console.print("[dim]last lines of the engine's log:[/]")
            console.print(exc.tail, markup=False, highlight=False)
        console.print(f"run directory (what was recorded): {exc.run_dir}", markup=False,
                      highlight=False)
        return EXIT_FAIL
    except (RunDirError, DiscoveryError, WorkerError) as exc:
        signals.finished()
        _err(console, str(exc))
        return EXIT_FAIL
    signals.finished()
    return _end_of_run(console, res)


def _repeated(console: Console, n: int, out: Path, argv: list[str],  # noqa: PLR0917
              one: Callable[[Path], int], restart_between: bool = False) -> int:
    """``one(run_dir)`` for each repeat into the run group ``out``; the first non-zero exit
    code stops the group and is returned."""
    from profiler.repeats import run_repeats
    from servescope.rundir.layout import RunDirError

    def each(d: Path) -> int:
        console.print(f"repeat {d.name} of {n}", markup=False, highlight=False)
        return one(d)

    try:
        codes = run_repeats(n, out, each, restart_between=restart_between,
                            command_line=argv, stop=lambda c: c != EXIT_OK)
    except (ValueError, RunDirError) as exc:
        _err(console, str(exc))
        return EXIT_USAGE
    console.print(f"run group: {escape(str(out))} ({len(codes)} of {n} repeats)",
                  highlight=False)
    return codes[-1]


def _interleaved(console: Console, n: int, out: Path, argv: list[str],  # noqa: PLR0917
                 order: str, seed: int, arms: dict[str, Callable[[Path], int]]) -> int:
    """Each arm ``n`` times, interleaved in rounds, into the run groups ``out/<arm>``; the
    first non-zero exit code stops the schedule and is returned."""
    from profiler.repeats import run_interleaved
    from servescope.rundir.layout import RunDirError

    def each(arm: str, one: Callable[[Path], int]) -> Callable[[Path], int]:
        def go(d: Path) -> int:
            console.print(f"arm {arm}, repeat {d.name} of {n}", markup=False,
                          highlight=False)
            return one(d)
        return go

    try:
        res = run_interleaved({a: each(a, f) for a, f in arms.items()}, n, out, order=order,
                              seed=seed, stop=lambda c: c != EXIT_OK, command_line=argv)
    except (ValueError, RunDirError) as exc:
        _err(console, str(exc))
        return EXIT_USAGE
    done = ", ".join(f"{escape(str(out / a))} ({len(c)} of {n})" for a, c in res.items())
    console.print(f"run groups: {done}; compare or gate them: servescope gate --baseline "
                  f"{escape(str(out / 'A'))} {escape(str(out / 'B'))} --budgets …",
                  highlight=False)
    bad = [c for codes in res.values() for c in codes if c != EXIT_OK]
    return bad[0] if bad else EXIT_OK


def _run_kept(console: Console, command: list[str], opts: WorkloadOptions,  # noqa: PLR0917
              eopts: EngineOptions, out: Path, argv: list[str], n: int) -> int:
    """``run --repeat N``: the engine started once, N attached runs against it."""
    from collectors.base import CollectorUnavailable
    from profiler.commands import model_tokenizer
    from profiler.discovery import DiscoveryError
    from profiler.engine_run import EngineRunError, resolve_engine
    from profiler.repeats_engine import run_kept_engine
    from profiler.workloads.spec import WorkloadError
    from servescope.engines.registry import UnknownEngineError
    from servescope.rundir.layout import RunDirError

    if opts.tokenizer is None and (tok := model_tokenizer(command)):
        opts = dataclasses.replace(opts, tokenizer=str(tok))
    try:
        spec, _ = resolve_engine(command, eopts)
        opts = fit_to_engine(opts, spec, command, _note(console))
        opts.to_config("http://127.0.0.1:1", opts.model or "check", out, argv)
    except (CollectorUnavailable, UnknownEngineError, WorkloadError, ValueError) as exc:
        _err(console, str(exc))
        return EXIT_USAGE
    api_key = resolve_api_key(opts, spec, command)
    eopts = dataclasses.replace(eopts, api_key=api_key)

    def make_config(url: str, run_dir: Path) -> LoadConfig:
        return opts.to_config(url, _model_for(opts, url, api_key, spec), run_dir, argv,
                              api_key=api_key, done_marker=spec.stream_done_marker)

    try:
        results = run_kept_engine(command, eopts, n, out, make_config=make_config,
                                  command_line=argv, say=_note(console))
    except EngineRunError as exc:
        signals.finished()
        _err(console, str(exc))
        if exc.tail:
            console.print(exc.tail, markup=False, highlight=False)
        return EXIT_FAIL
    except (RunDirError, DiscoveryError, ValueError) as exc:
        signals.finished()
        _err(console, str(exc))
        return EXIT_USAGE if isinstance(exc, ValueError) else EXIT_FAIL
    signals.finished()
    code = EXIT_OK
    for res in results:
        code = _end_of_run(console, res)
        if code != EXIT_OK:
            break
    console.print(f"run group: {escape(str(out))} ({len(results)} of {n} repeats)",
                  highlight=False)
    return code


def _end_of_run(console: Console, res: EngineRunResult) -> int:
    """What run and attach print once the run is recorded, and their exit code. A run the
    client had to stop (a full disk: ``LoadResult.error``) ends with that one line and exit
    1, after the summary of what was kept; no findings or report are attempted then. The
    summary, the findings and the report share one context of the run directory: it is
    loaded once, its timeline built once and its engine tables read once."""
    from analyzers.context import RunContext
    from profiler.commands import _findings_and_report, _print_summary

    error = res.load.error if res.load is not None else ""
    _interrupted_by(console)
    _report_end(console, res.run_dir, res.status, [w for w in res.warnings if w != error])
    if res.stop is not None:
        console.print(f"engine stopped with {', '.join(res.stop.signals_sent) or 'no signal'} "
                      f"in {res.stop.seconds:.1f} s"
                      + (f"; [red]left alive: {res.stop.leftover_pids}[/]"
                         if res.stop.leftover_pids else "; no process left"))
    if res.load is not None:
        ctx = RunContext(res.run_dir)
        _print_summary(ctx, "", None)
        if not error:
            _findings_and_report(ctx)
    if error:
        _err(console, error)
        return EXIT_FAIL
    return signals.exit_code(EXIT_INTERRUPTED) if res.status == "interrupted" else EXIT_OK
