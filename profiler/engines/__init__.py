"""Engine adapters: what servescope knows about each serving engine, as data.

:mod:`profiler.engines.base` holds the Protocol, :mod:`profiler.engines.registry` the list of
adapters. Importing this package imports nothing else (no registration side effects).
"""
