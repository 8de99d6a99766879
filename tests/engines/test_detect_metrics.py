"""attach recognizes the engine from its /metrics page, by each engine spec's own families."""

from __future__ import annotations

from pathlib import Path

import pytest

from servescope.engines.registry import detect_from_metrics

DATA = Path(__file__).parents[1] / "data"


@pytest.mark.parametrize(("page", "engine"), [
    ("vllm_cpu/metrics_during_load.prom", "vllm"),
    ("engines/sglang_after.prom", "sglang"),
    ("engines/trtllm_prometheus.prom", "trtllm"),
    ("engines/triton_after.prom", "triton"),
])
def test_engine_from_its_metrics_page(page: str, engine: str) -> None:
    spec = detect_from_metrics((DATA / page).read_text())
    assert spec is not None
    assert spec.name == engine


def test_unknown_page_is_no_engine() -> None:
    assert detect_from_metrics("# HELP x y\nprocess_cpu_seconds_total 1.0\n") is None
