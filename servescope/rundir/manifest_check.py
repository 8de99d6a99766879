"""The shape of ``manifest.json``, checked field by field before it becomes a
:class:`~servescope.rundir.manifest.Manifest`: a manifest that is valid JSON with a value of
the wrong type is one error naming the field and what was expected, never a traceback later
in an analyzer. Open sections (``workload``, ``target``, ``extra``) are checked only where
readers rely on them (docs/run-format.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ManifestShapeError", "check_manifest"]

Check = Callable[[object, str], None]


class ManifestShapeError(ValueError):
    """``str()`` is ``FIELD: expected …, got …`` (FIELD a dotted path)."""


def _kind(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    return "an object" if isinstance(v, dict) else type(v).__name__


def _bad(where: str, expected: str, v: object) -> ManifestShapeError:
    return ManifestShapeError(f"{where}: expected {expected}, got {_kind(v)}")


def _int(v: object, where: str) -> None:
    if type(v) is not int:
        raise _bad(where, "an integer", v)


def _str(v: object, where: str) -> None:
    if type(v) is not str:
        raise _bad(where, "a string", v)


def _str_list(v: object, where: str) -> None:
    if type(v) is not list:
        raise _bad(where, "a list of strings", v)
    for i, x in enumerate(v):
        _str(x, f"{where}[{i}]")


def _obj(fields: Mapping[str, Check] | None = None, required: tuple[str, ...] = (),
         closed: bool = False) -> Check:
    """An object whose named fields (where present) pass their checks; ``closed``: no
    other fields."""
    def check(v: object, where: str) -> None:
        if type(v) is not dict:
            raise _bad(where, "an object", v)
        for key in required:
            if key not in v:
                raise ManifestShapeError(f"{where}.{key}: missing")
        for key, value in v.items():
            sub = (fields or {}).get(key)
            if sub is not None:
                sub(value, f"{where}.{key}")
            elif closed:
                raise ManifestShapeError(f"{where}.{key}: unknown field")
    return check


def _obj_list(item: Check) -> Check:
    def check(v: object, where: str) -> None:
        if type(v) is not list:
            raise _bad(where, "a list of objects", v)
        for i, x in enumerate(v):
            item(x, f"{where}[{i}]")
    return check


_STEP_USAGE = _obj({"step": _int, "workers": _int, "wall_ns": _int, "cpu_ns": _int})
_TOP: dict[str, Check] = {
    "run_id": _str,
    "started_wall_ns": _int,
    "clock": _obj({"mono_ns": _int, "wall_ns": _int}, ("mono_ns", "wall_ns"), closed=True),
    "host": _obj({"hostname": _str, "os": _str, "python": _str, "cpu_model": _str,
                  "cpu_count": _int, "memory_bytes": _int, "gpus": _obj_list(_obj())},
                 ("hostname", "os", "python", "cpu_model", "cpu_count", "memory_bytes"),
                 closed=True),
    "command_line": _str_list,
    "workload": _obj({"steps": _obj_list(_obj()), "dataset": _obj(), "arrival": _obj()}),
    "seed": _int,
    "target": _obj(),
    "schema_version": _int,
    "servescope_version": _str,
    "status": _str,
    "ended_wall_ns": _int,
    "workers": _int,
    "warnings": _str_list,
    "extra": _obj({"client": _obj({"steps": _obj_list(_STEP_USAGE), "timestamps": _str}),
                   "engine": _obj({"name": _str, "command": _str_list})}),
}
_REQUIRED = ("run_id", "started_wall_ns", "clock", "host", "command_line", "workload", "seed",
             "target")


def check_manifest(data: Mapping[str, Any]) -> None:
    """Raise :class:`ManifestShapeError` at the first field of the wrong shape."""
    for key in _REQUIRED:
        if key not in data:
            raise ManifestShapeError(f"{key}: missing")
    for key, value in data.items():
        check = _TOP.get(key)
        if check is None:
            raise ManifestShapeError(f"{key}: unknown field")
        check(value, key)
