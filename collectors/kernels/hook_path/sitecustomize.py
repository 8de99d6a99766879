"""servescope's opt-in in-process torch.profiler hook (``--kernels-hook``), loaded by Python at
start-up because servescope put this directory first on the wrapped command's PYTHONPATH.

It does nothing unless ``SERVESCOPE_TORCH_HOOK`` names the private channel directory servescope
made for the run; then it starts :mod:`servescope_torch_hook`'s watcher thread. Any other
``sitecustomize`` further down ``sys.path`` (a distribution's, a virtualenv's) still runs,
exactly as it would have without this one.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def _chain() -> None:
    """Run the ``sitecustomize`` this one shadows, if there is one."""
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["_servescope_shadowed_sitecustomize"] = module
    spec.loader.exec_module(module)


def _hook() -> None:
    if os.environ.get("SERVESCOPE_TORCH_HOOK"):
        importlib.import_module("servescope_torch_hook").install()


try:
    _chain()
finally:
    try:
        _hook()
    except Exception as exc:  # noqa: BLE001 - never break the user's program
        sys.stderr.write(f"servescope torch hook not installed: {exc}\n")
