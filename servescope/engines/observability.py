"""What an engine offers a profiler beyond ``/metrics``, as data: which of its processes does
what (for a stack sampler), how to open and close its own profiler window (for kernel
traces), and how it exports OpenTelemetry spans.

The stack collector reads the roles, the kernels collector the profiler control and the otel
collector the OTel part; each engine module fills them from ``shared/reference/engines.md``
and ``gpu-half.md``, naming the file and version read, and
``tests/engines/test_observability.py`` checks that every pattern compiles and matches the
examples given with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "HttpCall",
    "OtelTracing",
    "ProcessRole",
    "ProcessRoleName",
    "ProfilerControl",
    "StepAnnotation",
    "TraceFile",
]

ProcessRoleName = Literal[
    "frontend",  # HTTP, tokenization, detokenization (vLLM APIServer, SGLang tokenizer worker)
    "engine_core",  # scheduler + executor; runs the model itself when there is one GPU rank
    "worker",  # one GPU rank running the model (vLLM mp executor)
    "scheduler",  # scheduling and the model forward of one rank (SGLang)
    "detokenizer",
    "coordinator",  # data-parallel coordination
]


@dataclass(frozen=True, slots=True)
class ProcessRole:
    """Processes whose title (``/proc/PID/cmdline`` after ``setproctitle``) fully matches
    ``title`` play ``role``. ``runs_model``: the GPU-side Python runs there (the process to
    sample for launch-bound steps). ``examples`` are real titles the pattern must match."""

    role: ProcessRoleName
    title: str  # regular expression, matched against the whole title
    runs_model: bool
    examples: tuple[str, ...]
    note: str = ""

    def matches(self, title: str) -> bool:
        return re.fullmatch(self.title, title.strip()) is not None


@dataclass(frozen=True, slots=True)
class HttpCall:
    """One request to the engine's own API (path on the API address)."""

    method: Literal["GET", "POST"]
    path: str


@dataclass(frozen=True, slots=True)
class TraceFile:
    """Files one profiler window writes, as a glob inside the output directory."""

    glob: str
    what: str  # "one per GPU rank", "the frontend's CPU-only trace", ...
    gzip: bool


@dataclass(frozen=True, slots=True)
class StepAnnotation:
    """The name the engine gives each scheduler step in its traces (a ``record_function`` or
    NVTX range), as a regular expression with named groups; ``examples`` must match."""

    pattern: str
    examples: tuple[str, ...]

    def match(self, name: str) -> dict[str, str] | None:
        m = re.fullmatch(self.pattern, name)
        return {k: v for k, v in m.groupdict().items() if v is not None} if m else None


@dataclass(frozen=True, slots=True)
class ProfilerControl:
    """How to open and close the engine's torch-profiler window while it serves.

    ``launch_flags``: the server must have been started with one of these for the endpoints
    to exist (empty: always there). ``start``/``stop``: the calls; ``stop`` is None when the
    window only ends by itself. ``body_fields``: what ``start`` accepts in its JSON body;
    ``steps_field`` bounds the window in engine steps, ``output_dir_field`` moves its files
    (None: set at launch). ``env``: variables that change the window (name → effect).
    ``with_stack``/``record_shapes``: the engine's defaults, both costly on big windows.
    """

    source: str
    launch_flags: tuple[str, ...]
    start: HttpCall
    stop: HttpCall | None
    body_fields: tuple[str, ...]
    steps_field: str | None
    output_dir_field: str | None
    trace_files: tuple[TraceFile, ...]
    step_annotations: tuple[StepAnnotation, ...]
    with_stack: bool
    record_shapes: bool
    env: Mapping[str, str] = field(default_factory=dict)
    # what a profiler asks for, as the engine spells it (servescope's cheap window: stacks
    # and shapes off, CPU and GPU activities): ``launch_settings`` go in the JSON value of
    # ``launch_flags[0]`` with the trace directory under ``launch_dir_key``; ``start_body`` is
    # the fixed part of ``start``'s JSON body (the step bound and output directory are added
    # under ``steps_field``/``output_dir_field``); ``launch_env`` are set at launch unless the
    # user set them (timeouts a window's export can exceed)
    launch_settings: Mapping[str, object] = field(default_factory=dict)
    launch_dir_key: str | None = None
    start_body: Mapping[str, object] = field(default_factory=dict)
    launch_env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OtelTracing:
    """How the engine exports OpenTelemetry traces.

    ``endpoint_flags``: the serving-command flag naming the OTLP collector;
    ``enable_flags``: any extra flag tracing needs; ``default_endpoint`` when the flag is
    given without one. ``request_span``: the name (a regular expression) of the one span per
    request; ``other_spans``: other span names worth knowing. ``attributes``: the ``gen_ai.*``
    keys the request span carries (the engine's, often older than the current conventions).
    ``env``: variables the exporter reads (name → effect).
    """

    source: str
    endpoint_flags: tuple[str, ...]
    enable_flags: tuple[str, ...]
    default_endpoint: str | None
    request_span: str | None
    request_span_examples: tuple[str, ...]
    other_spans: tuple[str, ...]
    attributes: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
