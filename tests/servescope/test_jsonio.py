"""One JSON-ifier (servescope.jsonio): what it writes for each kind of value, the NaN policy,
and whole-or-nothing files."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from pathlib import Path

import numpy as np
import pytest

from servescope.jsonio import dumps, loads, to_jsonable, write_json
from servescope.rundir.atomic import RunDirWriteError


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class Gate:
    p99_ms: float
    limits: tuple[float, ...]
    where: Path

    @property
    def verdict(self) -> str:  # a derived value a reader of the file wants
        return "fail" if self.p99_ms > 10 else "pass"

    @property
    def other(self) -> str:  # not one of those: left out
        return "x"


def test_values_become_plain_json() -> None:
    value = {"gate": Gate(12.5, (1.0, 2.0), Path("/runs/a")), "color": Color.RED,
             3: {"ids": {7}}, "arr": np.array([1, 2], dtype=np.int32),
             "f32": np.float32(0.5), "i64": np.int64(2**40), "ok": True, "none": None}
    assert loads(dumps(value)) == {
        "gate": {"p99_ms": 12.5, "limits": [1.0, 2.0], "where": "/runs/a", "verdict": "fail"},
        "color": "red", "3": {"ids": [7]}, "arr": [1, 2], "f32": 0.5, "i64": 2**40,
        "ok": True, "none": None}
    assert to_jsonable(value) == loads(dumps(value))


def test_non_finite_floats_are_null_and_the_file_is_valid_json() -> None:
    value = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf,
             "np": np.array([1.5, np.nan, np.inf]), "np_scalar": np.float64("nan")}
    text = dumps(value).decode()
    assert json.loads(text) == {"nan": None, "inf": None, "ninf": None,
                                "np": [1.5, None, None], "np_scalar": None}
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the output"))


def test_indented_output_is_sorted_and_ends_with_a_newline() -> None:
    assert dumps({"b": 1, "a": [1]}, indent=True) == b'{\n  "a": [\n    1\n  ],\n  "b": 1\n}\n'
    assert dumps({"b": 1, "a": 2}) == b'{"a":2,"b":1}'


def test_an_unknown_type_is_an_error() -> None:
    with pytest.raises(TypeError):
        dumps({"x": object()})


def test_write_json_is_whole_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    write_json(path, {"a": math.nan})
    assert json.loads(path.read_text()) == {"a": None}
    with pytest.raises(RunDirWriteError):
        write_json(tmp_path / "missing" / "out.json", {"a": 1})
    with pytest.raises(TypeError):
        write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": None}  # the earlier file stands
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
