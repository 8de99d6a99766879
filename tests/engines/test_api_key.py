"""The API key a serving command makes its server require, and the key servescope sends: the
user's own (``--api-key-env``) first, else the command's, else ``OPENAI_API_KEY``."""

from __future__ import annotations

import pytest

from profiler.cli_workload import WorkloadOptions
from profiler.commands_run import resolve_api_key
from servescope.engines.registry import get_spec

VLLM = ["vllm", "serve", "m", "--port", "8001"]
SGLANG = ["python", "-m", "sglang.launch_server", "--model-path", "m"]


@pytest.mark.parametrize(("engine", "argv", "env", "key"), [
    ("vllm", [*VLLM, "--api-key", "k-vllm-1"], {}, "k-vllm-1"),
    ("vllm", [*VLLM, "--api-key=k-vllm-2"], {}, "k-vllm-2"),
    ("vllm", [*VLLM, "--api-key", "old", "--api-key", "k-last"], {}, "k-last"),
    ("vllm", ["env", "VLLM_API_KEY=k-env-prefix", *VLLM], {}, "k-env-prefix"),
    ("vllm", VLLM, {"VLLM_API_KEY": "k-inherited"}, "k-inherited"),
    ("vllm", VLLM, {}, None),
    ("sglang", [*SGLANG, "--api-key", "k-sgl"], {}, "k-sgl"),
    ("sglang", SGLANG, {"VLLM_API_KEY": "not-for-sglang"}, None),
    ("trtllm", ["trtllm-serve", "m"], {}, None),
    # --engine given, command not recognized: the whole command is searched
    ("vllm", ["python", "-m", "my.server", "--api-key", "k-any"], {}, "k-any"),
    ("openai", ["llama-server", "-m", "x.gguf", "--api-key", "k-llama"], {}, "k-llama"),
])
def test_served_api_key(engine, argv, env, key):
    assert get_spec(engine).served_api_key(argv, env) == key


def test_which_key_is_sent(monkeypatch):
    vllm = get_spec("vllm")
    command = [*VLLM, "--api-key", "k-command"]
    monkeypatch.setenv("OPENAI_API_KEY", "k-openai")
    monkeypatch.setenv("MY_KEY", "k-mine")
    run_opts = WorkloadOptions(api_key_env=None)  # run's default
    assert resolve_api_key(run_opts, vllm, command) == "k-command"
    assert resolve_api_key(run_opts, vllm, VLLM) == "k-openai"
    assert resolve_api_key(WorkloadOptions(api_key_env="MY_KEY"), vllm, command) == "k-mine"
    # a named variable that is empty or unset does not hide the command's key
    assert resolve_api_key(WorkloadOptions(api_key_env="UNSET_KEY"), vllm, command) == (
        "k-command")
    monkeypatch.delenv("OPENAI_API_KEY")
    assert resolve_api_key(run_opts, vllm, VLLM) is None
    assert resolve_api_key(WorkloadOptions(), None, ()) is None  # attach, nothing set
