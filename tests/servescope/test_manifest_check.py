"""The typed sections' decoder and encoder (servescope.rundir.manifest_check): the dataclass
annotations are the schema; every error is one line naming the field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from servescope.rundir.manifest import EngineInfo, Manifest
from servescope.rundir.manifest_check import OMIT_DEFAULT, ManifestShapeError, decode, encode


@dataclass
class Inner:
    n: int
    tags: list[str] = field(default_factory=list)


@dataclass
class Outer:
    name: str
    rate_per_s: float = 0.0
    inner: Inner | None = None
    items: list[Inner] = field(default_factory=list)
    by_key: dict[str, int] = field(default_factory=dict)
    free: dict[str, Any] = field(default_factory=dict)
    flag: bool = field(default=False, metadata=OMIT_DEFAULT)


def test_a_valid_object_decodes_and_encodes_back() -> None:
    data = {"name": "a", "rate_per_s": 2, "inner": {"n": 1, "tags": ["x"]},
            "items": [{"n": 2}], "by_key": {"k": 3}, "free": {"any": [1, {"b": None}]},
            "flag": True}
    got = decode(Outer, data, "outer")
    assert got == Outer("a", 2.0, Inner(1, ["x"]), [Inner(2)], {"k": 3},
                        {"any": [1, {"b": None}]}, True)
    assert isinstance(got.rate_per_s, float)
    assert encode(got) == {**data, "rate_per_s": 2.0, "items": [{"n": 2, "tags": []}]}
    # None fields and OMIT_DEFAULT fields at their default are not written
    assert encode(Outer("b")) == {"name": "b", "rate_per_s": 0.0, "items": [], "by_key": {},
                                  "free": {}}


@pytest.mark.parametrize(("data", "why"), [
    ([], "outer: expected an object, got a list"),
    ({}, "outer.name: missing"),
    ({"name": 1}, "outer.name: expected a string, got an integer"),
    ({"name": "a", "rate_per_s": "1"}, "outer.rate_per_s: expected a number, got a string"),
    ({"name": "a", "rate_per_s": True}, "outer.rate_per_s: expected a number, got a boolean"),
    ({"name": "a", "inner": 5}, "outer.inner: expected an object or null, got an integer"),
    ({"name": "a", "inner": {"n": 1.0}}, "outer.inner.n: expected an integer, got a number"),
    ({"name": "a", "inner": {"n": 1, "tags": "x"}},
     "outer.inner.tags: expected a list of strings, got a string"),
    ({"name": "a", "items": [{"n": 1}, {"tags": []}]}, "outer.items[1].n: missing"),
    ({"name": "a", "by_key": {"k": "3"}}, "outer.by_key.k: expected an integer, got a string"),
    ({"name": "a", "flag": 1}, "outer.flag: expected a boolean, got an integer"),
    ({"name": "a", "typo": 1}, "outer.typo: unknown field"),
])
def test_the_first_bad_field_is_named(data: Any, why: str) -> None:
    with pytest.raises(ManifestShapeError) as err:
        decode(Outer, data, "outer")
    assert str(err.value) == why


def test_engine_entries_of_the_engine_specs_decode() -> None:
    from servescope.engines.registry import get_spec

    for name in ("vllm", "sglang", "trtllm", "triton", "openai"):
        spec = get_spec(name)
        entry = spec.manifest_entry([], "http://127.0.0.1:8000")
        info = EngineInfo.from_json(entry)
        assert info.name == name
        assert encode(info) == entry  # nothing lost, nothing added


def test_a_manifest_round_trips(tmp_path: Any) -> None:
    from servescope.clock import take_anchor
    from servescope.rundir.manifest import (
        ClientInfo,
        ClientStep,
        EngineStop,
        GpuDevice,
        GpuInventory,
        ScrapeCounts,
        host_fingerprint,
        read_manifest,
        write_manifest,
    )

    anchor = take_anchor()
    m = Manifest(run_id="r", started_wall_ns=anchor.wall_ns, clock=anchor,
                 host=host_fingerprint(), command_line=["x"], workload={"a": [1]}, seed=3,
                 target={"url": "u"}, client=ClientInfo("socket_read", [ClientStep(0, 2, 5, 7)]),
                 gpus=GpuInventory("550.54", [GpuDevice(0, "H100", 80 << 30)]),
                 engine=EngineInfo("vllm", command=["vllm", "serve"], ready_s=1.5,
                                   scrapes=ScrapeCounts(scrapes=3, ok=2, failed=1),
                                   stop=EngineStop(["SIGINT"], 0, 0.25)),
                 collectors={"gpu": {"samples": 4, "process_cpu_ns": -1}},
                 extra={"later": {"x": 1}})
    write_manifest(tmp_path, m)
    assert read_manifest(tmp_path) == m


@pytest.mark.parametrize("status", ["starting", "running", "complete", "interrupted", "failed"])
def test_every_status_the_orchestration_writes_reads_back(tmp_path: Any, status: str) -> None:
    # "starting" is what engine_run writes before the engine is ready; it was missing from
    # RUN_STATUSES, and nothing checked a status against the list
    from servescope.clock import take_anchor
    from servescope.rundir.manifest import host_fingerprint, read_manifest, write_manifest

    anchor = take_anchor()
    m = Manifest(run_id="r", started_wall_ns=anchor.wall_ns, clock=anchor,
                 host=host_fingerprint(), command_line=["x"], workload={}, seed=0,
                 target={"url": "u"}, status=status)
    write_manifest(tmp_path, m)
    assert read_manifest(tmp_path).status == status


def test_an_unknown_status_is_one_error_naming_the_field(tmp_path: Any) -> None:
    from servescope.clock import take_anchor
    from servescope.rundir.layout import RunDirError
    from servescope.rundir.manifest import host_fingerprint, read_manifest, write_manifest

    anchor = take_anchor()
    m = Manifest(run_id="r", started_wall_ns=anchor.wall_ns, clock=anchor,
                 host=host_fingerprint(), command_line=["x"], workload={}, seed=0,
                 target={"url": "u"}, status="half-done")
    write_manifest(tmp_path, m)
    with pytest.raises(RunDirError, match=r"status: expected one of starting, .*'half-done'"):
        read_manifest(tmp_path)
