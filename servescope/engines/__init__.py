"""Engine adapters: what servescope knows about each serving engine, as data.

:mod:`servescope.engines.base` holds the Protocol, :mod:`servescope.engines.registry` the list of
adapters. Importing this package imports nothing else (no registration side effects).
"""
