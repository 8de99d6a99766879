"""The registry: names, errors with hints, the Protocol and its extension."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import pytest

from servescope.engines.base import EngineAdapter, Histogram, MetricsFormat, Signal, SignalSpec
from servescope.engines.extensions import (
    EngineAdapterExt,
    MetricsEndpoint,
    engine_manifest_entry,
    metrics_endpoints,
)
from servescope.engines.registry import (
    ADAPTERS,
    UnknownEngineError,
    adapter_names,
    detect_adapter,
    get_adapter,
)


def test_names_are_unique_and_listed():
    assert adapter_names() == ("vllm", "sglang", "trtllm", "triton", "openai")
    assert len(set(adapter_names())) == len(ADAPTERS)


@pytest.mark.parametrize("adapter", ADAPTERS, ids=adapter_names())
def test_each_adapter_implements_the_protocol(adapter):
    assert isinstance(adapter, EngineAdapter)
    assert isinstance(adapter, EngineAdapterExt)
    params = getattr(type(adapter), "__dataclass_params__", None)
    assert params is not None
    assert params.frozen
    assert adapter.default_port > 0
    assert all(p.startswith("/") for p in adapter.readiness_paths)
    assert adapter.metrics_format in ("prometheus", "trtllm_json", "none")
    for signal, spec in adapter.signals.items():
        assert isinstance(signal, Signal)
        assert spec.families, signal
    for hist, families in adapter.histograms.items():
        assert isinstance(hist, Histogram)
        assert families
        assert not any(f.endswith("_bucket") for f in families)


def test_get_adapter_is_case_insensitive():
    assert get_adapter(" vLLM ").name == "vllm"
    assert get_adapter("TRTLLM") is get_adapter("trtllm")


@pytest.mark.parametrize(("name", "hint"), [
    ("vlm", "did you mean 'vllm'?"),
    ("sglan", "did you mean 'sglang'?"),
    ("trt-llm", "did you mean 'trtllm'?"),
    ("tritn", "did you mean 'triton'?"),
    ("openai-compatible", "did you mean 'openai'?"),
])
def test_unknown_name_lists_valid_ones_with_a_hint(name, hint):
    with pytest.raises(UnknownEngineError) as info:
        get_adapter(name)
    msg = str(info.value)
    assert hint in msg
    assert "valid engines: vllm, sglang, trtllm, triton, openai" in msg


def test_unknown_name_without_close_match():
    with pytest.raises(UnknownEngineError, match="valid engines") as info:
        get_adapter("llama.cpp-server-xyz")
    assert "did you mean" not in str(info.value)


def test_base_only_adapter_gets_defaults():
    """An adapter written against base.py alone still works through the extension helpers."""

    @dataclasses.dataclass(frozen=True)
    class Minimal:
        name: str = "mini"
        default_port: int = 1234
        readiness_paths: tuple[str, ...] = ("/ready",)
        metrics_path: str | None = "/stats"
        metrics_format: MetricsFormat = "prometheus"
        signals: Mapping[Signal, SignalSpec] = dataclasses.field(default_factory=dict)
        histograms: Mapping[Histogram, tuple[str, ...]] = dataclasses.field(
            default_factory=dict)

        def matches(self, argv: Sequence[str]) -> bool:
            return list(argv[:1]) == ["mini"]

        def address(self, argv: Sequence[str]) -> tuple[str, int]:
            return "127.0.0.1", self.default_port

    mini = Minimal()
    assert isinstance(mini, EngineAdapter)
    assert not isinstance(mini, EngineAdapterExt)
    assert metrics_endpoints(mini, [], "http://h:1") == (
        MetricsEndpoint("http://h:1/stats", "prometheus"),)
    entry = engine_manifest_entry(mini, ["mini"], "http://h:1")
    assert entry["name"] == "mini"
    assert entry["metrics"][0]["url"] == "http://h:1/stats"


def test_manifest_entry_names_the_adapter():
    vllm = detect_adapter(["vllm", "serve", "m", "--disable-log-stats"])
    assert vllm is not None
    entry = engine_manifest_entry(vllm, ["vllm", "serve", "m", "--disable-log-stats"],
                                  "http://127.0.0.1:8000")
    assert entry["name"] == "vllm"
    assert entry["metrics"] == [{"url": "http://127.0.0.1:8000/metrics",
                                 "format": "prometheus", "destructive": False,
                                 "optional": False, "min_interval_s": 0.0}]
    assert entry["readiness_paths"] == ["/health", "/v1/models"]
    assert any("disable-log-stats" in w for w in entry["warnings"])
