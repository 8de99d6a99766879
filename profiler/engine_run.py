"""``servescope run -- <serving command>``: start the engine, wait until it is ready, drive
the workload while scraping the engine's metrics, stop the whole engine, and leave a
complete run directory — also when the engine dies, never becomes ready, or the user
presses Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collectors.client.progress import Progress
from collectors.registry import COLLECTORS, DEFAULT_COLLECT, CollectorEntry, parse_collect
from profiler import collection, httpget, signals
from profiler.launch import EngineExited, EngineNotReady, EngineProcess, StopReport
from profiler.loadrun import LoadConfig, LoadResult, prepare_run_dir, run_load
from servescope.clock import take_anchor
from servescope.engines.registry import detect_from_metrics, detect_spec, engine_names, get_spec
from servescope.engines.spec import EngineSpec
from servescope.redact import redact_argv, redact_text, register_secrets, secrets_in
from servescope.registry import Registry
from servescope.rundir.atomic import RunDirWriteError
from servescope.rundir.manifest import (
    EngineError,
    EngineInfo,
    EngineStop,
    Manifest,
    gpu_inventory,
    host_fingerprint,
    read_manifest,
    write_manifest,
)

if TYPE_CHECKING:
    from collectors.base import Collector
    from collectors.child import ChildRunner

__all__ = ["EngineOptions", "EngineRunError", "EngineRunResult", "attach_engine", "resolve_engine",
           "run_engine", "sniff_engine"]

ENGINE_DIR = "engine"


class EngineRunError(RuntimeError):
    """The run could not go on; ``run_dir`` holds what was recorded, ``tail`` the log."""

    def __init__(self, msg: str, run_dir: Path, tail: str = "", code: int = 1) -> None:
        super().__init__(msg)
        self.run_dir = run_dir
        self.tail = tail
        self.code = code


@dataclass(frozen=True, slots=True)
class EngineOptions:
    engine: str | None = None  # engine name; None = recognize from the command
    url: str | None = None  # where to reach it; None = from the command's flags
    ready_timeout_s: float = 900.0
    metrics_interval_s: float = 1.0
    metrics_max_bytes: int = 4 << 20  # a larger page is refused (too_large)
    scrape: bool = True
    stop_grace_s: tuple[float, float, float] = (15.0, 10.0, 5.0)
    api_key: str | None = None  # for servescope's own requests (readiness, /version, /metrics)
    collect: str | Sequence[str] = DEFAULT_COLLECT  # collector names (--collect)
    gpu_interval_s: float = 0.1  # the GPU collector's sampling period (--gpu-interval)
    stacks_rate_hz: int = 50  # py-spy's sampling rate (--stacks-rate)
    stacks_blocking: bool = False  # py-spy stops the threads per sample (--stacks-blocking)
    hang_after_s: float = 30.0  # no chunk this long with requests in flight: dump stacks
    kernel_steps: int = 32  # engine steps in the kernels collector's window (--kernel-steps)
    kernel_window_s: float = 2.0  # the in-process hook's window (--kernel-window)
    kernels_hook: bool = False  # servescope's in-process torch.profiler hook (--kernels-hook)
    kernels_trace_dir: str | None = None  # attach: where the server writes its traces
    pid: int | None = None  # attach: the server's pid (--pid), for collectors that watch it
    otlp_endpoint: str | None = None  # --otlp-endpoint: the run exported there as it goes
    otlp_interval_s: float = 2.0  # how often the live export looks for finished requests
    registry: Registry[CollectorEntry] = field(default=COLLECTORS, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.ready_timeout_s > 0:
            raise ValueError("--ready-timeout must be positive")
        if not self.metrics_interval_s > 0:
            raise ValueError("--metrics-interval must be positive")
        if self.metrics_max_bytes < 1:
            raise ValueError("--metrics-max-bytes must be positive")
        if not 0.01 <= self.gpu_interval_s <= 60:
            raise ValueError("--gpu-interval must be between 0.01 and 60 seconds")
        if not 1 <= self.stacks_rate_hz <= 1000:
            raise ValueError("--stacks-rate must be between 1 and 1000 samples a second")
        if not self.hang_after_s > 0:
            raise ValueError("--hang-after must be positive")
        if not 1 <= self.kernel_steps <= 100_000:
            raise ValueError("--kernel-steps must be between 1 and 100000")
        if not 0 < self.kernel_window_s <= 600:
            raise ValueError("--kernel-window must be between 0 and 600 seconds")
        try:
            self.collectors()
        except ValueError as exc:  # an unknown name: the message lists the valid ones
            raise ValueError(f"--collect: {exc}") from None
        if self.otlp_endpoint is not None:
            from profiler.otlp_live import check_endpoint

            check_endpoint(self.otlp_endpoint)

    def collectors(self) -> tuple[str, ...]:
        """The chosen collectors' names; ``scrape=False`` (--no-metrics) leaves metrics out."""
        return tuple(n for n in parse_collect(self.collect, self.registry)
                     if self.scrape or n != "metrics")

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


@dataclass(slots=True)
class EngineRunResult:
    run_dir: Path
    status: str
    load: LoadResult | None
    stop: StopReport | None
    ready_s: float
    warnings: list[str]
    collected: dict[str, dict[str, Any]] = field(default_factory=dict)  # see collection.stop
    otlp_live: dict[str, Any] | None = None  # --otlp-endpoint: what the live export sent


def resolve_engine(argv: Sequence[str], opts: EngineOptions) -> tuple[EngineSpec, str]:
    """The engine spec and base URL for a serving command (clear errors on a miss)."""
    spec = get_spec(opts.engine) if opts.engine else detect_spec(argv)
    if spec is None:
        raise ValueError(
            f"cannot tell which engine {' '.join(argv[:3])!r}… starts; pass --engine NAME "
            f"(one of: {', '.join(engine_names())}) and --url if it is not on the default "
            "port")
    if opts.url:
        return spec, opts.url.rstrip("/")
    host, port = spec.address(argv)
    return spec, f"http://{host}:{port}"


class _Watchdog:
    """Interrupts the main thread (as Ctrl-C would) when the engine exits mid-run, so the
    load stops at once and finalizes instead of failing request after request."""

    def __init__(self, engine: EngineProcess) -> None:
        self.engine = engine
        self.died_with: int | None = None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._watch, daemon=True, name="engine-watchdog")

    def __enter__(self) -> _Watchdog:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join(2)

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            rc = self.engine.returncode()
            if rc is not None:
                self.died_with = rc
                signals.interrupt_main()  # stops the load as a Ctrl-C would (not counted)
                return


def run_engine(argv: Sequence[str], opts: EngineOptions, *,
               make_config: Callable[[str, Path], LoadConfig], out: Path,
               command_line: Sequence[str],
               on_progress: Callable[[Progress], None] | None = None,
               on_status: Callable[[str], None] | None = None,
               collectors: Sequence[Collector] | None = None) -> EngineRunResult:
    """``make_config(base_url, run_dir)`` builds the workload once the engine is ready (the
    model name is known only then). ``collectors``: made by :func:`collection.prepare`
    (default: here, before anything starts; :class:`CollectorUnavailable` then)."""
    say = on_status or (lambda _msg: None)
    spec, base_url = resolve_engine(argv, opts)
    if collectors is None:
        collectors = collection.prepare(opts)
    env = dict(os.environ)
    register_secrets([*secrets_in(argv, env), *([opts.api_key] if opts.api_key else [])])
    run_dir = prepare_run_dir(out)
    argv, env, launch_notes = collection.amend_launch(collectors, spec.name, argv, env, run_dir,
                                                      opts)
    for note in launch_notes:
        say(note)
    anchor = take_anchor()
    info = EngineInfo.from_json(spec.manifest_entry(argv, base_url))
    info.command = redact_argv(list(argv))
    write_manifest(run_dir, Manifest(
        run_id=run_dir.name, started_wall_ns=anchor.wall_ns, clock=anchor,
        host=host_fingerprint(), command_line=redact_argv(list(command_line)), workload={},
        seed=0, target={"url": base_url}, status="starting", gpus=gpu_inventory(), engine=info,
    ))
    engine = EngineProcess(argv, run_dir / ENGINE_DIR, env=env)
    warnings: list[str] = list(info.warnings)
    say(f"starting {spec.name}: {' '.join(redact_argv(list(argv)))}")
    res = EngineRunResult(run_dir, "failed", None, None, 0.0, warnings)
    error: EngineError | None = None
    try:
        _start_and_load(engine, spec, argv, base_url, opts, make_config, info, res,
                        on_progress, say, collectors)
        res.status = res.load.status if res.load is not None else "failed"
    except EngineExited as exc:
        error = EngineError("exited", str(exc), exc.returncode, exc.tail)
        raise EngineRunError(str(exc), run_dir, exc.tail) from exc
    except EngineNotReady as exc:
        error = EngineError("not_ready", str(exc), log_tail=exc.tail)
        raise EngineRunError(str(exc), run_dir, exc.tail) from exc
    except KeyboardInterrupt:
        res.status = "interrupted"
    finally:
        signals.begin_stop()  # from here a stop signal escalates the stop, never cuts it
        say("stopping the engine")
        res.stop = engine.stop(opts.stop_grace_s, hurry=signals.escalate, on_hurry=say)
        _finish(run_dir, info, res.stop, warnings, status=res.status, error=error)
        collection.record(run_dir, res.collected, warnings)
        _export_otlp(run_dir, opts, warnings, say, res.otlp_live)
    return res


def _start_and_load(  # noqa: PLR0917 - one call site, every argument required
        engine: EngineProcess, spec: EngineSpec, argv: Sequence[str],
                    base_url: str, opts: EngineOptions,
                    make_config: Callable[[str, Path], LoadConfig], info: EngineInfo,
                    res: EngineRunResult, on_progress: Callable[[Progress], None] | None,
                    say: Callable[[str], None], collectors: Sequence[Collector]) -> None:
    engine.start()
    say(f"waiting for {base_url} to be ready (up to {opts.ready_timeout_s:g} s)")
    res.ready_s = engine.wait_ready(base_url, spec.readiness_paths, opts.ready_timeout_s,
                                    headers=opts.headers())
    info.ready_s = round(res.ready_s, 3)
    info.processes = {str(k): _clean_title(v) for k, v in engine.processes().items()}
    if (version := engine_version(base_url, headers=opts.headers())) is not None:
        info.version = version
    say(f"ready after {res.ready_s:.1f} s; running the workload")
    try:
        cfg = make_config(base_url, res.run_dir)
    except (RuntimeError, OSError, ValueError):
        # model discovery failing because the engine just died: say that, with its log
        if (rc := engine.wait_exit(1.0)) is not None:
            raise EngineExited(f"the engine exited with code {rc} right after it was ready",
                               rc, engine.tail()) from None
        raise
    ctx = collection.context(spec, argv, base_url, res.run_dir, opts, engine.pid,
                             _target_in_flight(cfg))
    running = collection.start(collectors, ctx, res.warnings)
    try:
        with _Watchdog(engine) as dog, _live_otlp(res, opts):
            try:
                res.load = run_load(cfg, on_progress=collection.with_gauges(on_progress, running,
                                                                           ctx.activity),
                                    run_dir_ready=True, engine=info)
            except KeyboardInterrupt:
                if dog.died_with is None:
                    raise
    finally:
        res.collected = collection.stop(running, info, res.warnings)
    if dog.died_with is not None:
        raise EngineExited(f"the engine exited with code {dog.died_with} during the run",
                           dog.died_with, engine.tail())


def _target_in_flight(cfg: LoadConfig) -> int:
    """The requests a closed-loop load keeps in flight (0: open loop, no fixed level)."""
    a = cfg.arrival
    return int(a.concurrency or 0) if a.kind == "closed" else 0


def _clean_title(title: str) -> str:
    """A process title as recorded: secret flags' values and registered secrets masked."""
    return redact_text(" ".join(redact_argv(title.split(" "))))


def _finish(run_dir: Path, engine_info: EngineInfo, stop: StopReport | None,
            warnings: list[str], *, status: str, error: EngineError | None = None) -> None:
    """Finalize the engine tables and record the engine's end in the manifest."""
    from collectors.engine_metrics import finalize

    try:  # a run with no scrape has no journal: nothing to do, no warning
        warnings.extend(f"engine metrics: {w}" for w in finalize(run_dir)[1])
    except Exception as exc:  # noqa: BLE001 - the journal stays; readers fall back to it
        warnings.append(f"engine metrics tables not written ({type(exc).__name__}: {exc}); "
                        "the engine journal is kept and read instead")
    manifest = read_manifest(run_dir)
    info = manifest.engine = engine_info  # the same entry, as the run went on (scrapes too)
    if stop is not None:
        info.stop = EngineStop.from_json(stop.to_json())
        if stop.leftover_pids:
            warnings.append(f"engine processes still alive after SIGKILL: {stop.leftover_pids}")
        if stop.outside_group:
            listed = ", ".join(f"{pid} ({_clean_title(t)[:80]})"
                               for pid, t in stop.outside_group.items())
            warnings.append(f"engine processes outside its process group (daemons): {listed}; "
                            + ("some were left alive" if stop.leftover_pids else "stopped"))
    if error is not None:
        info.error = error
    if manifest.status in ("starting", "running") or status != "complete":
        manifest.status = status
    if manifest.ended_wall_ns < 0:
        manifest.ended_wall_ns = time.time_ns()
    manifest.warnings.extend(w for w in warnings if w not in manifest.warnings)
    try:
        write_manifest(run_dir, manifest)
    except RunDirWriteError as exc:  # a full disk: the load's own final manifest stands
        warnings.append(f"the engine's stop record was not written: {exc}")


def sniff_engine(base_url: str, timeout_s: float = 5.0,
                 headers: dict[str, str] | None = None) -> str:
    """Which engine serves ``base_url``, from the metric families on its ``/metrics`` page
    (each engine spec's own names); ``openai`` (generic) when there is no page or no match.
    Bounded: ``timeout_s`` in all and 4 MiB, however slowly the server answers."""
    answer = httpget.get(base_url.rstrip("/") + "/metrics", headers=headers,
                         timeout_s=timeout_s, max_bytes=4 << 20)
    if answer.status != 200:
        return "openai"
    spec = detect_from_metrics(answer.body.decode("utf-8", "replace"))
    return spec.name if spec is not None else "openai"


def engine_version(base_url: str, timeout_s: float = 2.0,
                   headers: dict[str, str] | None = None) -> str | None:
    """The engine's version from ``GET /version`` (vLLM and TensorRT-LLM answer
    ``{"version": ...}``), or None when it has no such endpoint or answers something else.
    Bounded: ``timeout_s`` in all and 64 KiB."""
    answer = httpget.get(base_url.rstrip("/") + "/version", headers=headers,
                         timeout_s=timeout_s, max_bytes=64 << 10)
    if not answer.ok:
        return None
    try:
        data = json.loads(answer.body)
    except ValueError:
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return str(version)[:100] if isinstance(version, str | int | float) else None


def attach_engine(base_url: str, opts: EngineOptions, *, config: LoadConfig,
                  on_progress: Callable[[Progress], None] | None = None,
                  collectors: Sequence[Collector] | None = None) -> EngineRunResult:
    """The same collection against a server servescope did not start (never stops it)."""
    # the client accepts .../v1 as the base URL; /metrics and /version live at the root
    base_url = base_url.rstrip("/").removesuffix("/v1")
    register_secrets([*secrets_in([], os.environ), *([opts.api_key] if opts.api_key else [])])
    name = opts.engine or sniff_engine(base_url, headers=opts.headers())
    spec = get_spec(name)
    if collectors is None:
        collectors = collection.prepare(opts)
    run_dir = prepare_run_dir(config.out_dir)
    info = EngineInfo.from_json(spec.manifest_entry([], base_url))
    info.attached = True
    if not opts.engine:
        info.detected_from = "/metrics names" if name != "openai" else "default"
    if (version := engine_version(base_url, headers=opts.headers())) is not None:
        info.version = version
    warnings: list[str] = []
    res = EngineRunResult(run_dir, "failed", None, None, 0.0, warnings)
    running: list[ChildRunner] = []
    try:
        ctx = collection.context(spec, [], base_url, run_dir, opts, opts.pid,
                                 _target_in_flight(config))
        running = collection.start(collectors, ctx, warnings)
        with _live_otlp(res, opts):
            res.load = run_load(config, on_progress=collection.with_gauges(
                on_progress, running, ctx.activity), run_dir_ready=True, engine=info)
        res.status = res.load.status
    except KeyboardInterrupt:
        res.status = "interrupted"
    finally:
        signals.begin_stop()
        res.collected = collection.stop(running, info, warnings)
        _finish(run_dir, info, None, warnings, status=res.status)
        collection.record(run_dir, res.collected, warnings)
        _export_otlp(run_dir, opts, warnings, None, res.otlp_live)
    return res


@contextlib.contextmanager
def _live_otlp(res: EngineRunResult, opts: EngineOptions) -> Iterator[None]:
    """--otlp-endpoint: the live export (a low-priority child tailing the journals) for the
    time of the load; what it sent lands in ``res.otlp_live``."""
    if opts.otlp_endpoint is None:
        yield
        return
    from profiler.otlp_live import LiveExport

    live = LiveExport(res.run_dir, opts.otlp_endpoint,
                      interval_s=opts.otlp_interval_s).start()
    try:
        yield
    finally:
        res.otlp_live = live.stop()


def _export_otlp(run_dir: Path, opts: EngineOptions, warnings: list[str],
                 say: Callable[[str], None] | None,
                 live: dict[str, Any] | None = None) -> None:
    """--otlp-endpoint: what the live export did not send (the engine spans, the final
    metrics) to the backend (a child process; a warning at worst, never a failed run)."""
    if opts.otlp_endpoint is None:
        return
    from profiler.otlp_live import export_after_run

    if say is not None:
        say(f"exporting the rest of the run to {redact_text(opts.otlp_endpoint)} (OTLP)")
    try:
        export_after_run(run_dir, opts.otlp_endpoint, warnings, say, live=live)
    except Exception as exc:  # noqa: BLE001 - an export never fails the run
        warnings.append(f"OTLP export to {redact_text(opts.otlp_endpoint)}: not done "
                        f"({type(exc).__name__})")
