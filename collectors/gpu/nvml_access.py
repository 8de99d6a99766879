"""How the GPU collector reaches NVML: a provider (the seam tests use) and one guard that
tells an unsupported field (recorded once) from a failing call (counted).

The real provider imports ``pynvml`` (nvidia-ml-py, the ``gpu`` extra) lazily. A test passes
its own provider, a picklable callable that returns a module-like object with pynvml's names
(``tests/fakes/nvml.py``), so the collector's child process uses it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["NvmlProvider", "ReadGuard", "import_pynvml", "is_unsupported"]

NvmlProvider = Callable[[], Any]
T = TypeVar("T")

_NOT_SUPPORTED = 3  # NVML_ERROR_NOT_SUPPORTED
_FUNCTION_NOT_FOUND = 13  # NVML_ERROR_FUNCTION_NOT_FOUND: a driver older than the binding
_ERROR_CHARS = 200


def import_pynvml() -> Any:
    """The real NVML binding (``ImportError`` when the gpu extra is not installed)."""
    import pynvml

    return pynvml


def is_unsupported(nvml: Any, exc: BaseException) -> bool:
    """Whether ``exc`` means "this device or driver does not have it" (not a failure)."""
    if isinstance(exc, AttributeError):  # the binding lacks the function
        return True
    err = getattr(nvml, "NVMLError", None)
    if err is None or not isinstance(exc, err):
        return False
    value = getattr(exc, "value", None)
    return value in (getattr(nvml, "NVML_ERROR_NOT_SUPPORTED", _NOT_SUPPORTED),
                     getattr(nvml, "NVML_ERROR_FUNCTION_NOT_FOUND", _FUNCTION_NOT_FOUND))


@dataclass(slots=True)
class ReadGuard:
    """Calls NVML for one GPU: a field answered NotSupported is remembered in
    ``unsupported`` and never asked again; any other failure is counted in ``errors`` (by
    field) with its first text in ``examples``. Nothing raises out of :meth:`read`."""

    nvml: Any
    unsupported: set[str] = field(default_factory=set)
    errors: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    def read(self, name: str, fn: Callable[..., T], *args: Any) -> T | None:
        if name in self.unsupported:
            return None
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - recorded, never raised into the run
            self.fail(name, exc)
            return None

    def fail(self, name: str, exc: BaseException) -> None:
        """Record ``exc`` for ``name``: unsupported once, or one more error."""
        if is_unsupported(self.nvml, exc):
            self.unsupported.add(name)
            return
        self.error(name, f"{type(exc).__name__}: {exc}")

    def error(self, name: str, text: str) -> None:
        self.errors[name] = self.errors.get(name, 0) + 1
        self.examples.setdefault(name, text[:_ERROR_CHARS])

    def mark_unsupported(self, name: str) -> None:
        self.unsupported.add(name)
