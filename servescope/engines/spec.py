"""What servescope knows about one serving engine, as one frozen value: :class:`EngineSpec`.

A spec recognizes the engine's launcher in a serving command, says where the server listens
and when it is ready, where its metrics are and in which format, what the command's flags
imply (metrics switched off, a batch cap, an API key), and maps the engine's own metric names
to servescope's canonical signals (:mod:`servescope.engines.base`). Specs hold no state and do
no I/O, so analyzers use them offline on a copied run directory.

Facts that depend on the command line are data too: a :class:`MetricsRoute` says which flag
turns it off or makes it appear, a :class:`LaunchWarning` holds :data:`Condition` values
(``HasFlag``, ``LacksFlags``, ``SwitchedOff``, ``FlagIs``); the one function-valued field is
``launcher``, the matcher that finds the engine's program in argv
(:mod:`servescope.engines._argv`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from servescope.engines._argv import (
    Launch,
    Matcher,
    base_url,
    connect_host,
    find_launch,
    flag_value,
    has_flag,
    parse_port,
    strip_wrappers,
    switch_value,
    url_host,
    url_scheme,
)
from servescope.engines.base import (
    DerivedSignal,
    Histogram,
    Knob,
    MetricsFormat,
    Signal,
    SignalSpec,
)
from servescope.engines.observability import OtelTracing, ProcessRole, ProfilerControl

__all__ = [
    "Condition",
    "EngineSpec",
    "FlagIs",
    "HasFlag",
    "LacksFlags",
    "LaunchWarning",
    "MetricsEndpoint",
    "MetricsPort",
    "MetricsRoute",
    "SwitchedOff",
    "frozen_map",
]


def frozen_map(items: Mapping[Any, Any] | None = None) -> Mapping[Any, Any]:
    """A read-only mapping (specs are shared by every caller)."""
    return MappingProxyType(dict(items or {}))


# ------------------------------------------------------------------ conditions on the command


@dataclass(frozen=True, slots=True)
class HasFlag:
    """The engine's arguments hold one of ``flags`` (``--x``, ``--x v`` or ``--x=v``)."""

    flags: tuple[str, ...]

    def holds(self, args: Sequence[str]) -> bool:
        return has_flag(args, *self.flags)


@dataclass(frozen=True, slots=True)
class LacksFlags:
    """None of ``flags`` is among the engine's arguments."""

    flags: tuple[str, ...]

    def holds(self, args: Sequence[str]) -> bool:
        return not has_flag(args, *self.flags)


@dataclass(frozen=True, slots=True)
class SwitchedOff:
    """A boolean option, on by default, turned off (``--x=false``, ``--x false``)."""

    flag: str

    def holds(self, args: Sequence[str]) -> bool:
        return not switch_value(args, self.flag, True)


@dataclass(frozen=True, slots=True)
class FlagIs:
    """``flag``'s value (``default`` when absent) is ``value``."""

    flag: str
    value: str
    default: str

    def holds(self, args: Sequence[str]) -> bool:
        return (flag_value(args, self.flag) or self.default) == self.value


Condition = HasFlag | LacksFlags | SwitchedOff | FlagIs


@dataclass(frozen=True, slots=True)
class LaunchWarning:
    """``text`` is said when the engine's launcher is in the command and every condition in
    ``when`` holds on its arguments."""

    text: str
    when: tuple[Condition, ...]


# ------------------------------------------------------------------ metrics endpoints


@dataclass(frozen=True, slots=True)
class MetricsEndpoint:
    """One URL to scrape, resolved for a command and a base URL.

    ``destructive``: every read removes what it returns (TensorRT-LLM ``/metrics``), so every
    body must be kept. ``optional``: a 404 means the engine was started without it; the scraper
    asks once and stops. ``min_interval_s``: the engine may hold the request open this long.
    """

    url: str
    format: MetricsFormat
    destructive: bool = False
    optional: bool = False
    min_interval_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "format": self.format, "destructive": self.destructive,
                "optional": self.optional, "min_interval_s": self.min_interval_s}


@dataclass(frozen=True, slots=True)
class MetricsPort:
    """Metrics served on their own port (Triton): ``port_flag`` (default ``default``), on the
    host of ``host_flag`` when given, else on the API's host."""

    port_flag: str
    default: int
    host_flag: str | None = None


@dataclass(frozen=True, slots=True)
class MetricsRoute:
    """Where an engine serves one kind of metrics, before a command is known.

    ``needs_flag``: served only when the command has it (SGLang ``--enable-metrics``); a
    command that visibly lacks it makes the endpoint ``optional``. ``off_switch``: a boolean
    option that removes it (Triton ``--allow-metrics=false``). ``port``: on another port than
    the API (None: the API's base URL).
    """

    path: str
    format: MetricsFormat
    destructive: bool = False
    optional: bool = False
    min_interval_s: float = 0.0
    needs_flag: str | None = None
    off_switch: str | None = None
    port: MetricsPort | None = None


# ------------------------------------------------------------------ the spec


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class EngineSpec:
    """Everything servescope knows about one engine. One instance per engine module
    (``SPEC``), listed in :mod:`servescope.engines.registry`; compared by identity."""

    name: str  # what runs record (manifest) and --engine takes
    display_name: str
    source: str  # what the facts were checked against (version, file, captures)
    # -- recognizing the command and reaching the server
    launcher: Matcher | None  # None: never detected; the whole command is the engine's
    default_host: str | None  # None: all interfaces (connect to 127.0.0.1)
    default_port: int
    host_flags: tuple[str, ...] = ("--host",)
    port_flags: tuple[str, ...] = ("--port",)
    readiness_paths: tuple[str, ...]  # GET paths that all answer 200 once it can serve
    api_key_flags: tuple[str, ...] = ("--api-key",)  # make the server require Bearer KEY
    api_key_env: tuple[str, ...] = ()  # variables the server reads that key from
    command_warnings: tuple[LaunchWarning, ...] = ()
    batch_cap_flags: tuple[str, ...] = ()  # the flag capping sequences running at once
    # -- requests: OpenAI extensions the server refuses (HTTP 422), which servescope then
    # does not send ("ignore_eos", "continuous_usage_stats"); whether GET /v1/models works
    # (False: the model is the command's first positional argument, unless --model)
    rejected_request_fields: tuple[str, ...] = ()
    lists_models: bool = True
    stream_done_marker: bool = True  # False: streams end with the body, no "data: [DONE]"
    # -- metrics
    metrics: tuple[MetricsRoute, ...]
    signals: Mapping[Signal, SignalSpec] = field(default_factory=frozen_map)
    derived_signals: Mapping[Signal, DerivedSignal] = field(default_factory=frozen_map)
    histograms: Mapping[Histogram, tuple[str, ...]] = field(default_factory=frozen_map)
    histogram_scale: Mapping[str, float] = field(default_factory=frozen_map)  # → seconds
    histogram_labels: Mapping[str, Mapping[str, str]] = field(default_factory=frozen_map)
    notes: Mapping[str, str] = field(default_factory=frozen_map)  # signal/histogram → meaning
    tuning: Mapping[Knob, str] = field(default_factory=frozen_map)  # knob → in its flags
    # -- for the GPU half (no consumer yet: issues 10, 11, 14)
    process_roles: tuple[ProcessRole, ...] = ()
    profiler: ProfilerControl | None = None
    otel: OtelTracing | None = None

    def __repr__(self) -> str:
        return f"EngineSpec({self.name!r})"

    # ---- the command

    def launch(self, argv: Sequence[str]) -> Launch | None:
        """Where this engine's launcher is in ``argv`` (None if it is not there)."""
        return find_launch(argv, self.launcher) if self.launcher is not None else None

    def matches(self, argv: Sequence[str]) -> bool:
        return self.launch(argv) is not None

    def engine_args(self, argv: Sequence[str]) -> tuple[str, ...]:
        """The engine's own arguments: after its launcher; for a spec without one, the whole
        command without its wrappers; empty when the launcher is not in the command."""
        launch = self.launch(argv)
        if launch is not None:
            return launch.args
        return tuple(strip_wrappers(argv)) if self.launcher is None else ()

    def address(self, argv: Sequence[str]) -> tuple[str, int]:
        """(host, port) the command will listen on, from its own flags or the defaults. A
        wildcard host (0.0.0.0, ::) is returned as 127.0.0.1 for connecting."""
        args = self.engine_args(argv)
        port = parse_port(flag_value(args, *self.port_flags), self.port_flags[0],
                          self.default_port)
        return connect_host(flag_value(args, *self.host_flags) or self.default_host), port

    def launch_warnings(self, argv: Sequence[str]) -> tuple[str, ...]:
        """Problems visible in the command: metrics switched off, a Unix socket, ..."""
        launch = self.launch(argv)
        if launch is None:
            return ()
        return tuple(w.text for w in self.command_warnings
                     if all(c.holds(launch.args) for c in w.when))

    def served_api_key(self, argv: Sequence[str], env: Mapping[str, str]) -> str | None:
        """The key the serving command makes its server require (``--api-key K`` or
        ``--api-key=K``, the last one; else a variable of ``api_key_env``, from a
        ``env``/``VAR=value`` prefix of the command or the environment it inherits), or
        None. For a command whose launcher is not found (``--engine`` given), the whole
        command is searched."""
        launch = self.launch(argv)
        if self.api_key_flags and (
                key := flag_value(launch.args if launch else argv, *self.api_key_flags)):
            return key
        for name in self.api_key_env:
            given = [tok.partition("=")[2] for tok in argv if tok.startswith(f"{name}=")]
            if given and given[-1]:
                return given[-1]
            if env.get(name):
                return env[name]
        return None

    # ---- metrics

    def served_model(self, argv: Sequence[str]) -> str | None:
        """The model the command serves: its first positional argument after the launcher
        (``transformers serve MODEL``, ``vllm serve MODEL``), or None."""
        launch = self.launch(argv)
        args = launch.args if launch is not None else ()
        if args and not args[0].startswith("-"):
            return args[0]
        return None

    def metrics_endpoints(self, argv: Sequence[str], base: str) -> tuple[MetricsEndpoint, ...]:
        """Every metrics URL for a server started by ``argv`` (``[]`` when attaching) whose
        API is at ``base``; the first is the primary one."""
        launch = self.launch(argv)
        args = self.engine_args(argv)
        out: list[MetricsEndpoint] = []
        for route in self.metrics:
            if route.off_switch is not None and SwitchedOff(route.off_switch).holds(args):
                continue
            root = base.rstrip("/") if route.port is None else _metrics_root(route.port, args,
                                                                              base)
            absent = (route.needs_flag is not None and launch is not None
                      and not has_flag(launch.args, route.needs_flag))
            out.append(MetricsEndpoint(root + route.path, route.format, route.destructive,
                                       route.optional or absent, route.min_interval_s))
        return tuple(out)

    def metrics_url(self, argv: Sequence[str], base: str) -> str | None:
        """The primary metrics URL (it may be on another port than the API), or None."""
        eps = self.metrics_endpoints(argv, base)
        return eps[0].url if eps else None

    def manifest_entry(self, argv: Sequence[str], base: str) -> dict[str, Any]:
        """What a run records about its engine: the spec's name (the analyzers look the spec
        up by it), where it listened, and what was scraped."""
        return {
            "name": self.name,
            "base_url": base,
            "readiness_paths": list(self.readiness_paths),
            "metrics": [ep.to_json() for ep in self.metrics_endpoints(argv, base)],
            "warnings": list(self.launch_warnings(argv)),
        }


def _metrics_root(port: MetricsPort, args: Sequence[str], api: str) -> str:
    number = parse_port(flag_value(args, port.port_flag), port.port_flag, port.default)
    address = flag_value(args, port.host_flag) if port.host_flag else None
    host = connect_host(address) if address is not None else url_host(api)
    return base_url(host, number, url_scheme(api))
