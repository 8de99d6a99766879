"""The GPU topology recorded beside interconnect numbers: ``nvidia-smi topo -m`` as printed
and NVML's NVLink state per GPU (active links and their version)."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

__all__ = ["gpu_topology"]

_MAX_LINKS = 18  # NVML_NVLINK_MAX_LINKS on Hopper


def _nvlinks() -> list[dict[str, Any]]:
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver
        return []
    out = []
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            active, version = 0, None
            for link in range(_MAX_LINKS):
                try:
                    if pynvml.nvmlDeviceGetNvLinkState(h, link) == pynvml.NVML_FEATURE_ENABLED:
                        active += 1
                        version = int(pynvml.nvmlDeviceGetNvLinkVersion(h, link))
                except Exception:  # noqa: BLE001 - link absent or not supported
                    break
            out.append({"index": i, "name": str(pynvml.nvmlDeviceGetName(h)),
                        "nvlink_active_links": active, "nvlink_version": version})
    finally:
        pynvml.nvmlShutdown()
    return out


def gpu_topology() -> dict[str, Any]:
    """``{"nvidia_smi_topo": text or "", "nvml": [per GPU], "notes": [...]}``; empty parts
    on a machine without the tool or the driver."""
    notes: list[str] = []
    topo = ""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        notes.append("nvidia-smi not found: no topology matrix")
    else:
        try:
            done = subprocess.run([exe, "topo", "-m"], capture_output=True, text=True,
                                  timeout=30, check=False)
            topo = done.stdout if done.returncode == 0 else ""
            if done.returncode != 0:
                notes.append(f"nvidia-smi topo -m exited with {done.returncode}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            notes.append(f"nvidia-smi topo -m: {exc}")
    return {"nvidia_smi_topo": topo, "nvml": _nvlinks(), "notes": notes}
