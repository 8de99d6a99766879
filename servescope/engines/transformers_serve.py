"""Hugging Face ``transformers serve`` (transformers 5.17.0, run on an H200 with continuous
batching: ``../shared/reference/gpu/README.md``; verified against the running server).

An OpenAI-compatible server in one Python process: uvicorn's event loop serves HTTP, and with
``--continuous-batching`` a ``ContinuousBatchingManager`` thread (``_run_generation_loop``)
schedules and runs the model (paged attention; it reserves most of the GPU's memory for its
cache at start). What servescope has to know about it:

- no ``/metrics`` (404): servescope measures it from the client, the GPU and its stacks only;
- ``GET /v1/models`` answers HTTP 500: the model is the command's positional argument;
- unknown request fields are refused with HTTP 422, so servescope does not send
  ``ignore_eos`` (outputs may then end at an end-of-sequence token before ``max_tokens``);
- its streams end with the response body after the chunk with ``finish_reason`` (and usage),
  never with ``data: [DONE]``: such a stream is complete, not truncated;
- ``/health`` answers 200 once the model is loaded (12–17 s for a small model).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from servescope.engines._argv import python_module
from servescope.engines.base import Knob
from servescope.engines.observability import ProcessRole
from servescope.engines.spec import EngineSpec, LacksFlags, LaunchWarning

__all__ = ["SPEC"]

_CLI_MODULE = "transformers.cli.transformers"


def _match(argv: Sequence[str], i: int) -> int | None:
    """``transformers serve ...`` or ``python -m transformers.cli.transformers serve ...``."""
    if os.path.basename(argv[i]) == "transformers":
        j = i + 1
    elif (mod := python_module(argv, i)) is not None and mod[0] == _CLI_MODULE:
        j = mod[1]
    else:
        return None
    return j + 1 if j < len(argv) and argv[j] == "serve" else None


_ROLES = (
    # one process: HTTP, scheduling and the model (the generation loop is a thread of it)
    ProcessRole("engine_core", r"\S*python[\d.]*\s+\S*transformers\s+serve(?:\s.*)?|"
                r"\S*transformers\s+serve(?:\s.*)?", True,
                ("/opt/torch/.venv/bin/python /opt/torch/.venv/bin/transformers serve "
                 "/tmp/tinyllama --continuous-batching --port 8000 --host 127.0.0.1",
                 "transformers serve Qwen/Qwen3-0.6B"),
                note="the model runs in the thread 'Thread-N (_run_generation_loop)' "
                     "(ContinuousBatchingManager) with --continuous-batching"),
)

# the flags of `transformers serve --help` (5.17.0, read on the H200)
_TUNING: Mapping[Knob, str] = MappingProxyType({
    Knob.MAX_BATCH: "serve with --continuous-batching and raise --cb-max-batch-tokens "
                    "(tokens per batch)",
    Knob.KV_CACHE_SIZE: "raise --cb-num-blocks or --cb-max-memory-percent (the KV cache's "
                        "share of GPU memory)",
    Knob.CUDA_GRAPHS: "--cb-use-cuda-graph (replay the decode step as a CUDA graph) and "
                      "--compile (torch.compile)",
    Knob.QUANTIZATION: "--quantization bnb-8bit or bnb-4bit: fewer bytes read per decode step",
})

_WARNINGS = (
    LaunchWarning("transformers serve without --continuous-batching runs one request at a "
                  "time; concurrent streams queue",
                  (LacksFlags(("--continuous-batching",)),)),
)

SPEC = EngineSpec(
    name="transformers",
    display_name="transformers serve",
    source="transformers 5.17.0 run on an NVIDIA H200 (shared/reference/gpu)",
    launcher=_match,
    default_host="localhost",
    default_port=8000,
    readiness_paths=("/health",),
    api_key_flags=(),
    command_warnings=_WARNINGS,
    metrics=(),
    tuning=_TUNING,
    process_roles=_ROLES,
    rejected_request_fields=("ignore_eos",),
    lists_models=False,
    stream_done_marker=False,
)
