"""One way to turn our data into JSON files: :func:`dumps` (orjson) and :func:`write_json`.

What it serializes: dataclasses (their fields, plus the derived properties a reader wants:
``name``, ``exit_code``, ``verdict`` where a class defines them as properties), enums (their
values), ``Path`` (a string), tuples, sets and mappings, numpy arrays and scalars
(``OPT_SERIALIZE_NUMPY``), dict keys that are not strings (as strings).

NaN and ±inf: JSON has neither, so every non-finite float (Python or numpy) is written as
``null``; a reader sees "no value", never an invalid file. Output is UTF-8, keys sorted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Set
from pathlib import Path
from typing import Any

import orjson

__all__ = ["dumps", "loads", "to_jsonable", "write_json"]

_OPTIONS = (orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS
            | orjson.OPT_PASSTHROUGH_DATACLASS)
_PROPERTIES = ("name", "exit_code", "verdict")  # derived values a reader of the file wants


def _default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        for name in _PROPERTIES:
            if isinstance(getattr(type(obj), name, None), property):
                out[name] = getattr(obj, name)
        return out
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, Set):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def dumps(obj: Any, *, indent: bool = False) -> bytes:
    """``obj`` as UTF-8 JSON (module doc: what is serialized; non-finite floats are null).
    ``indent``: two spaces per level and a final newline, for files people read."""
    option = _OPTIONS | (orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE if indent else 0)
    return orjson.dumps(obj, default=_default, option=option)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def to_jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON data (dicts, lists, str, int, float, bool, None), by the same
    rules as :func:`dumps`."""
    return orjson.loads(dumps(obj))


def write_json(path: Path, obj: Any, *, indent: bool = True) -> None:
    """Write ``obj`` to ``path`` whole or not at all
    (:func:`servescope.rundir.atomic.atomic_write`; a failure raises
    :class:`~servescope.rundir.atomic.RunDirWriteError`)."""
    from servescope.rundir.atomic import atomic_write

    atomic_write(Path(path), dumps(obj, indent=indent))
