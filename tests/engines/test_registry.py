"""The registry: names, errors with hints, and what every engine spec must hold."""

from __future__ import annotations

import dataclasses
import re

import pytest

from servescope.engines.base import DerivedSignal, Histogram, Knob, Signal, SignalSpec
from servescope.engines.registry import (
    ENGINES,
    UnknownEngineError,
    detect_spec,
    engine_names,
    get_spec,
)
from servescope.engines.spec import EngineSpec, MetricsEndpoint, MetricsRoute


def test_names_are_unique_and_listed():
    assert engine_names() == ("vllm", "sglang", "trtllm", "triton", "transformers", "openai")
    assert len(set(engine_names())) == len(ENGINES)


@pytest.mark.parametrize("spec", ENGINES.values(), ids=engine_names())
def test_each_spec_is_well_formed(spec: EngineSpec):
    assert isinstance(spec, EngineSpec)
    params = getattr(type(spec), "__dataclass_params__", None)
    assert params is not None
    assert params.frozen
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    assert spec.name == spec.name.lower()
    assert spec.display_name
    assert spec.source
    assert spec.default_port > 0
    assert all(p.startswith("/") for p in spec.readiness_paths)
    # every engine says where its metrics are (or may be); transformers serve has none (404)
    assert spec.metrics or spec.name == "transformers"
    for route in spec.metrics:
        assert route.path.startswith("/")
        assert route.format in ("prometheus", "trtllm_json", "none")
        assert route.min_interval_s >= 0
    for signal, sig in spec.signals.items():
        assert isinstance(signal, Signal)
        assert isinstance(sig, SignalSpec)
        assert sig.families, signal
    for signal, derived in spec.derived_signals.items():
        assert isinstance(signal, Signal)
        assert isinstance(derived, DerivedSignal)
        assert len(derived.parts) >= 2
        assert all(p.families for p in derived.parts)
    families = {f for names in spec.histograms.values() for f in names}
    for hist, names in spec.histograms.items():
        assert isinstance(hist, Histogram)
        assert names
        assert not any(f.endswith("_bucket") for f in names)
    assert set(spec.histogram_scale) <= families
    assert set(spec.histogram_labels) <= families
    assert all(isinstance(k, Knob) and v for k, v in spec.tuning.items())
    assert {str(k) for k in spec.notes} <= {*map(str, Signal), *map(str, Histogram)}
    flags = (*spec.host_flags, *spec.port_flags, *spec.api_key_flags, *spec.batch_cap_flags)
    assert all(re.fullmatch(r"--[a-z][a-z0-9_-]*", f) for f in flags), flags
    for warning in spec.command_warnings:
        assert warning.text
        assert warning.when


@pytest.mark.parametrize("name", ["vllm", "sglang"])
def test_batch_cap_flags_are_data(name: str):
    spec = get_spec(name)
    assert spec.batch_cap_flags
    assert Knob.MAX_BATCH in spec.tuning
    assert spec.batch_cap_flags[0] in spec.tuning[Knob.MAX_BATCH]  # the advice names it


def test_get_spec_is_case_insensitive():
    assert get_spec(" vLLM ").name == "vllm"
    assert get_spec("TRTLLM") is get_spec("trtllm")


@pytest.mark.parametrize(("name", "hint"), [
    ("vlm", "did you mean 'vllm'?"),
    ("sglan", "did you mean 'sglang'?"),
    ("trt-llm", "did you mean 'trtllm'?"),
    ("tritn", "did you mean 'triton'?"),
    ("openai-compatible", "did you mean 'openai'?"),
])
def test_unknown_name_lists_valid_ones_with_a_hint(name, hint):
    with pytest.raises(UnknownEngineError) as info:
        get_spec(name)
    msg = str(info.value)
    assert hint in msg
    assert "valid engines: vllm, sglang, trtllm, triton, transformers, openai" in msg


def test_unknown_name_without_close_match():
    with pytest.raises(UnknownEngineError, match="valid engines") as info:
        get_spec("llama.cpp-server-xyz")
    assert "did you mean" not in str(info.value)


def test_minimal_spec_gets_defaults():
    """A spec giving only what has no default still works everywhere."""

    def mini_launcher(argv, i):
        return i + 1 if argv[i] == "mini" else None

    mini = EngineSpec(name="mini", display_name="Mini", source="test", launcher=mini_launcher,
                      default_host=None, default_port=1234, readiness_paths=("/ready",),
                      metrics=(MetricsRoute("/stats", "prometheus"),))
    assert isinstance(mini, EngineSpec)
    assert mini.matches(["mini"])
    assert not mini.matches(["other"])
    assert mini.address(["mini"]) == ("127.0.0.1", 1234)
    assert mini.metrics_endpoints([], "http://h:1") == (
        MetricsEndpoint("http://h:1/stats", "prometheus"),)
    assert mini.launch_warnings(["mini"]) == ()
    assert mini.served_api_key(["mini", "--api-key", "k"], {}) == "k"
    entry = mini.manifest_entry(["mini"], "http://h:1")
    assert entry["name"] == "mini"
    assert entry["metrics"][0]["url"] == "http://h:1/stats"


def test_manifest_entry_names_the_engine():
    vllm = detect_spec(["vllm", "serve", "m", "--disable-log-stats"])
    assert vllm is not None
    entry = vllm.manifest_entry(["vllm", "serve", "m", "--disable-log-stats"],
                                "http://127.0.0.1:8000")
    assert entry["name"] == "vllm"
    assert entry["metrics"] == [{"url": "http://127.0.0.1:8000/metrics",
                                 "format": "prometheus", "destructive": False,
                                 "optional": False, "min_interval_s": 0.0}]
    assert entry["readiness_paths"] == ["/health", "/v1/models"]
    assert any("disable-log-stats" in w for w in entry["warnings"])


def test_cli_help_names_every_engine():
    """The --engine help is a literal (importing the registry would slow ``--help``): it
    must name every registered engine."""
    from typer.testing import CliRunner

    from profiler.cli import app

    for command in ("run", "attach"):
        res = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "250"})
        assert res.exit_code == 0, res.output
        assert [n for n in engine_names() if n not in res.output] == [], command
