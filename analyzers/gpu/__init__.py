"""GPU analysis: the GPU collector's files read back (:mod:`analyzers.gpu.load`) and the
per-window figures (:mod:`analyzers.gpu.window`, returning :mod:`analyzers.gpu.figures`)."""

from analyzers.gpu.figures import GpuFigures, GpuWindowFigures, ThrottleShare

__all__ = ["GpuFigures", "GpuWindowFigures", "ThrottleShare"]
