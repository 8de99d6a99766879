"""The shape of ``manifest.json``, checked field by field before it becomes a
:class:`~servescope.rundir.manifest.Manifest`: a manifest that is valid JSON with a value of
the wrong type is one error naming the field and what was expected, never a traceback later
in an analyzer.

The typed sections are dataclasses, and their fields' annotations are the schema:
:func:`decode` checks a decoded JSON value against a dataclass (``int``, ``float``, ``str``,
``bool``, ``list[T]``, ``dict[str, T]``, ``T | None``, nested dataclasses, ``Any``) and builds
it; :func:`encode` is the way back. A field with a default may be absent; an unknown field is
an error. The open objects ``workload`` and ``target`` are checked only where readers rely on
them (docs/run-format.md).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, TypeVar

__all__ = ["OMIT_DEFAULT", "RUN_STATUSES", "V1_GPU", "Check", "ManifestShapeError", "check_top",
           "decode", "decode_value", "encode", "kind_of", "obj_check", "obj_list"]

T = TypeVar("T")
Check = Callable[[object, str], None]
OMIT_DEFAULT = {"omit_default": True}  # field metadata: not written while at its default


class ManifestShapeError(ValueError):
    """``str()`` is ``FIELD: expected …, got …`` (FIELD a dotted path)."""


def kind_of(v: object) -> str:
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
    return ManifestShapeError(f"{where}: expected {expected}, got {kind_of(v)}")


# ------------------------------------------------------------------------ typed sections

_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "a boolean"}
_PLURAL = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}


def _expected(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp in _NAMES:
        return _NAMES[tp]
    if origin is list:
        return f"a list of {_PLURAL.get(args[0], 'objects')}"
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        return f"{_expected(inner[0])} or null"
    return "an object"


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode_value(tp: Any, v: object, where: str) -> Any:
    """``v`` (decoded JSON) as a value of the annotation ``tp``; :class:`ManifestShapeError`
    naming ``where`` or the first bad field inside it."""
    if tp is Any:
        return v
    if tp in (int, str, bool):
        if type(v) is not tp:
            raise _bad(where, _NAMES[tp], v)
        return v
    if tp is float:
        if type(v) not in (int, float):
            raise _bad(where, "a number", v)
        return float(typing.cast(float, v))
    if dataclasses.is_dataclass(tp):
        return decode(typing.cast(type, tp), v, where)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        if v is None:
            return None
        inner = [a for a in args if a is not type(None)]
        try:
            return decode_value(inner[0], v, where)
        except ManifestShapeError as exc:
            if str(exc).startswith(f"{where}: "):  # this field itself: say null would do
                raise _bad(where, _expected(tp), v) from None
            raise
    if origin is list:
        if type(v) is not list:
            raise _bad(where, _expected(tp), v)
        return [decode_value(args[0], x, f"{where}[{i}]") for i, x in enumerate(v)]
    if origin is dict:
        if type(v) is not dict:
            raise _bad(where, "an object", v)
        return {k: decode_value(args[1], x, f"{where}.{k}") for k, x in v.items()}
    raise TypeError(f"{where}: no decoder for {tp!r}")  # a programming error, not the file's


def decode(cls: type[T], v: object, where: str) -> T:
    """``v`` (decoded JSON) as a ``cls`` dataclass; :class:`ManifestShapeError` naming the
    first field (``where`` its dotted path) that is unknown, missing or of the wrong type."""
    if type(v) is not dict:
        raise _bad(where, "an object", v)
    hints = _hints(typing.cast(type, cls))
    fields = {f.name: f for f in dataclasses.fields(typing.cast(Any, cls))}
    kwargs: dict[str, Any] = {}
    for key, value in v.items():
        if key not in fields:
            raise ManifestShapeError(f"{where}.{key}: unknown field")
        kwargs[key] = decode_value(hints[key], value, f"{where}.{key}")
    for name, f in fields.items():
        if (name not in kwargs and f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING):
            raise ManifestShapeError(f"{where}.{name}: missing")
    return cls(**kwargs)


def encode(obj: Any) -> Any:
    """A dataclass (nested: lists, dicts) as JSON-ready data; fields that are None, or at
    their default with :data:`OMIT_DEFAULT` metadata, are left out."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is None or (f.metadata.get("omit_default") and value == f.default):
                continue
            out[f.name] = encode(value)
        return out
    if isinstance(obj, list | tuple):
        return [encode(x) for x in obj]
    if isinstance(obj, dict):
        return {k: encode(x) for k, x in obj.items()}
    return obj


# ------------------------------------------------------------------------ the top level


def _int(v: object, where: str) -> None:
    if type(v) is not int:
        raise _bad(where, "an integer", v)


def _str(v: object, where: str) -> None:
    if type(v) is not str:
        raise _bad(where, "a string", v)


RUN_STATUSES = ("starting", "running", "complete", "interrupted", "failed")


def _status(v: object, where: str) -> None:
    _str(v, where)
    if v not in RUN_STATUSES:
        raise ManifestShapeError(f"{where}: expected one of {', '.join(RUN_STATUSES)}, "
                                 f"got {v!r}")


def _str_list(v: object, where: str) -> None:
    if type(v) is not list:
        raise _bad(where, "a list of strings", v)
    for i, x in enumerate(v):
        _str(x, f"{where}[{i}]")


def obj_check(fields: Mapping[str, Check] | None = None) -> Check:
    """An object whose named fields (where present) pass their checks."""
    def check(v: object, where: str) -> None:
        if type(v) is not dict:
            raise _bad(where, "an object", v)
        for key, value in v.items():
            sub = (fields or {}).get(key)
            if sub is not None:
                sub(value, f"{where}.{key}")
    return check


def obj_list(item: Check) -> Check:
    def check(v: object, where: str) -> None:
        if type(v) is not list:
            raise _bad(where, "a list of objects", v)
        for i, x in enumerate(v):
            item(x, f"{where}[{i}]")
    return check


SCALARS: dict[str, Check] = {
    "run_id": _str,
    "started_wall_ns": _int,
    "command_line": _str_list,
    "workload": obj_check({"steps": obj_list(obj_check()), "dataset": obj_check(),
                           "arrival": obj_check()}),
    "seed": _int,
    "target": obj_check(),
    "schema_version": _int,
    "servescope_version": _str,
    "status": _status,
    "ended_wall_ns": _int,
    "workers": _int,
    "warnings": _str_list,
}
V1_GPU = obj_check({"index": _int, "name": _str, "driver": _str, "memory_bytes": _int})
REQUIRED = ("run_id", "started_wall_ns", "clock", "host", "command_line", "workload", "seed",
            "target")


def check_top(data: Mapping[str, Any], sections: Mapping[str, Check]) -> None:
    """Raise :class:`ManifestShapeError` at the first top-level field of the wrong shape
    (``sections``: the checks of the other known fields; an unknown field is an error)."""
    for key in REQUIRED:
        if key not in data:
            raise ManifestShapeError(f"{key}: missing")
    for key, value in data.items():
        check = SCALARS.get(key) or sections.get(key)
        if check is None:
            raise ManifestShapeError(f"{key}: unknown field")
        check(value, key)
