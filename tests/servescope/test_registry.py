"""The one registry: ordered, case-insensitive, one miss error that is both kinds."""

from __future__ import annotations

import pytest

from servescope.registry import Registry, UnknownNameError


def test_lookup_order_and_miss() -> None:
    reg = Registry("engine", [("vllm", 1), ("sglang", 2)])
    assert reg.get(" VLLM ") == 1
    assert reg.names() == ("vllm", "sglang")
    assert list(reg) == [1, 2]
    assert "sglang" in reg
    assert len(reg) == 2
    with pytest.raises(UnknownNameError) as info:
        reg.get("vlm")
    assert str(info.value) == ("unknown engine 'vlm' (did you mean 'vllm'?); valid engines: "
                               "vllm, sglang")
    assert isinstance(info.value, LookupError)
    assert isinstance(info.value, ValueError)
    with pytest.raises(UnknownNameError, match="valid engines") as info:
        reg.get("zzz")
    assert "did you mean" not in str(info.value)


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="two collectors named 'gpu'"):
        Registry("collector", [("gpu", 1), ("GPU", 2)])
