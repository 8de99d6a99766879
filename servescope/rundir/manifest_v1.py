"""Schema 1 manifests, read by converting them to schema 2 (docs/run-format.md).

Schema 1 kept what the client, the engine and an import recorded in one untyped ``extra``
object, and the GPUs in ``host.gpus``. :func:`convert_v1` checks a schema-1 manifest's own
shape (errors name its fields: ``extra.engine.name``, ``host.gpus[0]``) and moves

- ``extra.client``, ``extra.engine``, ``extra.imported`` to the sections ``client``,
  ``engine``, ``imported`` (``imported.clock`` becomes ``imported.clock_note``);
- ``host.gpus`` (each ``{index, name, driver, memory_bytes}``) to ``gpus``
  (``{driver_version, devices: [{index, name, memory_bytes}]}``);
- any other ``extra.NAME`` (an object) to a section ``NAME`` this version does not know
  (kept as is).

The sections are then decoded as schema 2's, their errors still named by their schema-1 path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from servescope.rundir.manifest_check import (
    V1_GPU,
    Check,
    ManifestShapeError,
    check_top,
    kind_of,
    obj_check,
    obj_list,
)

__all__ = ["V1_PATHS", "convert_v1"]

V1_PATHS = {"client": "extra.client", "engine": "extra.engine", "imported": "extra.imported"}
_V1_SECTIONS: dict[str, Check] = {
    "clock": obj_check(),  # checked when decoded
    "host": obj_check({"gpus": obj_list(V1_GPU)}),
    "extra": obj_check(),
}


def convert_v1(data: Mapping[str, Any]) -> dict[str, Any]:
    """The schema-2 form of a schema-1 manifest (``schema_version`` stays 1: it says what the
    directory was written with); :class:`ManifestShapeError` at the first field of the wrong
    shape."""
    check_top(data, _V1_SECTIONS)
    out = {k: v for k, v in data.items() if k != "extra"}
    host = dict(data["host"])
    gpus = host.pop("gpus", [])
    out["host"] = host
    drivers = [g["driver"] for g in gpus if "driver" in g]
    out["gpus"] = {"driver_version": drivers[0] if drivers else "",
                   "devices": [{"index": g.get("index", i), "name": g.get("name", ""),
                                "memory_bytes": g.get("memory_bytes", -1)}
                               for i, g in enumerate(gpus)]}
    extra = dict(data.get("extra", {}))
    for name, value in extra.items():
        if type(value) is not dict:
            raise ManifestShapeError(f"extra.{name}: expected an object, got {kind_of(value)}")
        if name in out:  # e.g. extra.gpus: it would take the place of a field of schema 2
            raise ManifestShapeError(f"extra.{name}: unknown field")
    imported = extra.get("imported")
    if imported is not None and "clock" in imported:
        extra["imported"] = {("clock_note" if k == "clock" else k): v
                             for k, v in imported.items()}
    out.update(extra)  # client, engine, imported, and any section this version does not know
    return out
