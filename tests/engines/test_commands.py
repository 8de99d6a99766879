"""Command recognition, host/port, metrics URLs and launch warnings, per engine."""

from __future__ import annotations

import shlex

import pytest

from servescope.engines._argv import flag_value, strip_wrappers, switch_value
from servescope.engines.registry import detect_spec, get_spec


def argv(cmd: str) -> list[str]:
    return shlex.split(cmd)


# (command, engine, (host, port)) — hosts/ports from the engines' documented defaults when
# the command has no flag: vLLM all interfaces:8000, SGLang 127.0.0.1:30000, trtllm-serve
# localhost:8000, Triton all interfaces:8000 (engines.md 1.1, 2.1, 3.1, 4).
CASES = [
    ("vllm serve Qwen/Qwen3-8B", "vllm", ("127.0.0.1", 8000)),
    ("vllm serve m --host 10.0.0.5 --port 9000", "vllm", ("10.0.0.5", 9000)),
    ("vllm serve m --host=0.0.0.0 --port=8001", "vllm", ("127.0.0.1", 8001)),
    ("vllm serve m --port 9000 --port 9001", "vllm", ("127.0.0.1", 9001)),  # last one wins
    ("/opt/venv/bin/vllm serve m --host :: --port 8123", "vllm", ("127.0.0.1", 8123)),
    ("python -m vllm.entrypoints.openai.api_server --model m --port 8002", "vllm",
     ("127.0.0.1", 8002)),
    ("/usr/bin/python3.11 -u -X dev -m vllm.entrypoints.openai.api_server --model m", "vllm",
     ("127.0.0.1", 8000)),
    ("python3 -m vllm.entrypoints.cli.main serve m --port 7000", "vllm", ("127.0.0.1", 7000)),
    ("python -m vllm.entrypoints.launchers.api_server.entry --model m", "vllm",
     ("127.0.0.1", 8000)),
    ("env VLLM_CPU_KVCACHE_SPACE=1 -u FOO vllm serve m --host 127.0.0.1 --port 18000", "vllm",
     ("127.0.0.1", 18000)),
    ("CUDA_VISIBLE_DEVICES=0 vllm serve m --port 8010", "vllm", ("127.0.0.1", 8010)),
    ("uv run --with vllm --python 3.11 vllm serve m --port 8011", "vllm",
     ("127.0.0.1", 8011)),
    ("uv run -m vllm.entrypoints.openai.api_server --port 8012", "vllm", ("127.0.0.1", 8012)),
    ("nohup numactl --cpunodebind=0 -m 0 taskset -c 0-7 vllm serve m --port 8013", "vllm",
     ("127.0.0.1", 8013)),
    ("bash -c 'VLLM_LOGGING_LEVEL=DEBUG vllm serve m --port 8014'", "vllm",
     ("127.0.0.1", 8014)),
    ("nsys profile -o rep --trace-fork-before-exec=true --cuda-graph-trace node vllm serve m "
     "--port 8015", "vllm", ("127.0.0.1", 8015)),
    ("conda run -n serve --no-capture-output vllm serve m --port 8016", "vllm",
     ("127.0.0.1", 8016)),
    ("python -m sglang.launch_server --model-path m", "sglang", ("127.0.0.1", 30000)),
    ("python3 -m sglang.launch_server --model-path m --host 0.0.0.0 --port 30001", "sglang",
     ("127.0.0.1", 30001)),
    ("sglang serve --model-path m --port=31000 --host=gpu-7", "sglang", ("gpu-7", 31000)),
    ("env X=1 uvx --from sglang sglang serve --model-path m", "sglang", ("127.0.0.1", 30000)),
    ("trtllm-serve serve meta-llama/Llama-3.1-8B", "trtllm", ("localhost", 8000)),
    ("trtllm-serve meta-llama/Llama-3.1-8B --host 0.0.0.0 --port 26666", "trtllm",
     ("127.0.0.1", 26666)),
    ("mpirun -n 2 --allow-run-as-root trtllm-llmapi-launch trtllm-serve m --port 8100",
     "trtllm", ("localhost", 8100)),
    ("python -m tensorrt_llm.commands.serve serve m --port 8101", "trtllm",
     ("localhost", 8101)),
    ("tritonserver --model-repository=/models", "triton", ("127.0.0.1", 8000)),
    ("/opt/tritonserver/bin/tritonserver --model-repository /models --http-port 9000 "
     "--http-address 10.1.1.1", "triton", ("10.1.1.1", 9000)),
    ("tritonserver --model-repository=/m --http-port=8500", "triton", ("127.0.0.1", 8500)),
]


@pytest.mark.parametrize(("cmd", "engine", "address"), CASES, ids=[c[0][:50] for c in CASES])
def test_recognized_with_address(cmd, engine, address):
    spec = detect_spec(argv(cmd))
    assert spec is not None, cmd
    assert spec.name == engine
    assert spec.matches(argv(cmd))
    assert spec.address(argv(cmd)) == address


@pytest.mark.parametrize("cmd", [
    "python serve.py --port 8000",
    "python -m http.server 8000",
    "python -c 'import vllm'",
    "vllm bench serve --model m",  # a benchmark client, not a server
    "vllm chat",
    "trtllm-serve disaggregated -c disagg.yaml",  # the disaggregation router
    "trtllm-serve grpc m",
    "sglang version",
    "echo hello",
    "",
])
def test_not_an_engine(cmd):
    assert detect_spec(argv(cmd)) is None


def test_first_launcher_wins():
    # a vLLM server started under a wrapper whose own argument mentions tritonserver later
    cmd = argv("vllm serve m --served-model-name tritonserver")
    assert detect_spec(cmd) is get_spec("vllm")
    # no engine recognizes its launcher inside another engine's arguments first
    cmd = argv("nsys profile -o x trtllm-serve m --tokenizer /models/vllm")
    assert detect_spec(cmd) is get_spec("trtllm")


def test_openai_generic_is_chosen_by_name_only():
    openai = get_spec("openai")
    assert not openai.matches(argv("my-server --port 9999"))
    assert openai.address(argv("my-server --host 0.0.0.0 --port 9999")) == ("127.0.0.1", 9999)
    assert openai.address([]) == ("127.0.0.1", 8000)
    assert list(openai.readiness_paths) == ["/v1/models"]
    (ep,) = openai.metrics_endpoints([], "http://h:1")
    assert ep.url == "http://h:1/metrics"
    assert ep.optional


def test_bad_port_is_a_clear_error():
    with pytest.raises(ValueError, match="--port 'eighty'"):
        get_spec("vllm").address(argv("vllm serve m --port eighty"))
    with pytest.raises(ValueError, match="outside"):
        get_spec("sglang").address(argv("sglang serve --port 70000"))


def test_readiness_paths():
    assert list(get_spec("vllm").readiness_paths) == ["/health", "/v1/models"]
    assert list(get_spec("sglang").readiness_paths) == ["/health", "/v1/models"]
    assert list(get_spec("trtllm").readiness_paths) == ["/health"]
    assert list(get_spec("triton").readiness_paths) == ["/v2/health/ready"]


def test_metrics_urls_per_engine():
    vllm = get_spec("vllm")
    assert vllm.metrics_url(argv("vllm serve m"), "http://127.0.0.1:8000") == (
        "http://127.0.0.1:8000/metrics")

    trt = get_spec("trtllm")
    json_ep, prom_ep = trt.metrics_endpoints(argv("trtllm-serve m"), "http://localhost:8000/")
    assert (json_ep.url, json_ep.format, json_ep.destructive) == (
        "http://localhost:8000/metrics", "trtllm_json", True)
    assert json_ep.min_interval_s >= 2.0  # the handler may wait 2 s for stats
    assert (prom_ep.url, prom_ep.format, prom_ep.optional) == (
        "http://localhost:8000/prometheus/metrics", "prometheus", True)

    triton = get_spec("triton")
    # metrics live on their own port: the default 8002, on the API's host when attaching
    assert triton.metrics_url([], "http://gpu-box:8000") == "http://gpu-box:8002/metrics"
    cmd = argv("tritonserver --model-repository=/m --metrics-port 9102 --http-port 9100")
    assert triton.metrics_url(cmd, "http://127.0.0.1:9100") == "http://127.0.0.1:9102/metrics"
    cmd = argv("tritonserver --model-repository=/m --metrics-address 0.0.0.0")
    assert triton.metrics_url(cmd, "http://10.0.0.1:8000") == "http://127.0.0.1:8002/metrics"
    assert triton.metrics_url([], "http://[::1]:8000") == "http://[::1]:8002/metrics"
    cmd = argv("tritonserver --model-repository=/m --allow-metrics=false")
    assert triton.metrics_url(cmd, "http://127.0.0.1:8000") is None
    assert "allow-metrics=false" in triton.launch_warnings(cmd)[0]


def test_sglang_metrics_switch():
    sg = get_spec("sglang")
    off = argv("python -m sglang.launch_server --model-path m")
    on = argv("python -m sglang.launch_server --model-path m --enable-metrics")

    def metrics_enabled(cmd: list[str]) -> bool:
        (ep,) = sg.metrics_endpoints(cmd, "http://127.0.0.1:30000")
        return not ep.optional

    assert not metrics_enabled(off)
    assert metrics_enabled(on)
    assert metrics_enabled([])  # attaching: only a scrape can tell
    (ep,) = sg.metrics_endpoints(off, "http://127.0.0.1:30000")
    assert ep.optional  # asked once, then left alone
    assert "--enable-metrics" in sg.launch_warnings(off)[0]
    assert sg.launch_warnings(on) == ()


def test_launch_warnings():
    vllm = get_spec("vllm")
    assert vllm.launch_warnings(argv("vllm serve m")) == ()
    warns = vllm.launch_warnings(argv("vllm serve m --disable-log-stats --uds /tmp/s"))
    assert any("--disable-log-stats" in w for w in warns)
    assert any("Unix socket" in w for w in warns)
    trt = get_spec("trtllm")
    assert "enable_iter_perf_stats" in trt.launch_warnings(argv("trtllm-serve m"))[0]
    assert trt.launch_warnings(argv("trtllm-serve m --config c.yaml")) == ()
    assert trt.launch_warnings(argv("trtllm-serve m --backend tensorrt")) == ()


def test_argv_helpers():
    assert flag_value(["--port", "--host", "x"], "--port") is None  # missing value
    assert flag_value(["--port=1", "--port", "2"], "--port") == "2"
    assert switch_value(["--allow-metrics", "false"], "--allow-metrics", True) is False
    assert switch_value(["--allow-metrics"], "--allow-metrics", False) is True
    assert switch_value(["--allow-metrics=0"], "--allow-metrics", True) is False
    assert strip_wrappers(["sudo", "-u", "svc", "-E", "env", "A=1", "vllm", "serve"]) == [
        "vllm", "serve"]
    assert strip_wrappers(["timeout", "-s", "INT", "600", "vllm", "serve"]) == ["vllm", "serve"]
    assert strip_wrappers(["sh", "-c", "unterminated 'quote"]) == [
        "sh", "-c", "unterminated 'quote"]
