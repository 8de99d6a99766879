"""transformers serve (servescope/engines/transformers_serve.py): recognized from its command,
and its quirks handled before the first request (it refuses ignore_eos with HTTP 422 and
answers GET /v1/models with 500; both observed on transformers 5.17.0, shared/reference/gpu)."""

from __future__ import annotations

import pytest

from profiler.cli_workload import WorkloadOptions
from profiler.commands_run import fit_to_engine
from servescope.engines.registry import detect_spec, get_spec

CMD = ["transformers", "serve", "/tmp/tinyllama", "--continuous-batching", "--port", "8123",
       "--host", "127.0.0.1"]


@pytest.mark.parametrize("argv", [
    CMD,
    ["/opt/torch/.venv/bin/transformers", "serve", "m"],
    ["python3", "-m", "transformers.cli.transformers", "serve", "m"],
    ["env", "CUDA_VISIBLE_DEVICES=0", "transformers", "serve", "m"],
])
def test_the_command_is_recognized(argv: list[str]) -> None:
    spec = detect_spec(argv)
    assert spec is not None
    assert spec.name == "transformers"


def test_not_every_transformers_command_is_a_server() -> None:
    assert detect_spec(["transformers", "chat", "m"]) is None
    assert detect_spec(["transformers"]) is None


def test_address_model_and_warnings_come_from_the_command() -> None:
    spec = get_spec("transformers")
    assert spec.address(CMD) == ("127.0.0.1", 8123)
    assert spec.address(["transformers", "serve", "m"]) == ("localhost", 8000)
    assert spec.served_model(CMD) == "/tmp/tinyllama"
    assert spec.served_model(["transformers", "serve", "--port", "1"]) is None
    assert spec.launch_warnings(CMD) == ()
    assert any("--continuous-batching" in w
               for w in spec.launch_warnings(["transformers", "serve", "m"]))
    assert spec.metrics_endpoints(CMD, "http://127.0.0.1:8123") == ()


def test_its_process_is_the_model_runner() -> None:
    spec = get_spec("transformers")
    title = ("/opt/torch/.venv/bin/python /opt/torch/.venv/bin/transformers serve "
             "/tmp/tinyllama --continuous-batching --port 8000 --host 127.0.0.1")
    roles = [r for r in spec.process_roles if r.matches(title)]
    assert [r.role for r in roles] == ["engine_core"]
    assert roles[0].runs_model
    assert not any(r.matches("/usr/bin/python3 -m vllm.entrypoints.openai.api_server")
                   for r in spec.process_roles)


def test_the_request_options_fit_the_engine() -> None:
    said: list[str] = []
    opts = fit_to_engine(WorkloadOptions(), get_spec("transformers"), CMD, said.append)
    assert opts.ignore_eos is False
    assert opts.model == "/tmp/tinyllama"
    assert len(said) == 2
    assert "HTTP 422" in said[0]
    assert "/tmp/tinyllama" in said[1]
    # an explicit --model wins; vLLM keeps ignore_eos and lists its models itself
    said.clear()
    assert fit_to_engine(WorkloadOptions(model="x"), get_spec("transformers"), CMD,
                         said.append).model == "x"
    assert fit_to_engine(WorkloadOptions(), get_spec("vllm"), ["vllm", "serve", "m"],
                         said.append) == WorkloadOptions()
