"""What servescope knows about each serving engine, as data: one
:class:`~servescope.engines.spec.EngineSpec` per engine module (``vllm``, ``sglang``,
``trtllm``, ``triton``, ``openai_generic``), listed by name in
:mod:`servescope.engines.registry`; :mod:`servescope.engines.base` holds the vocabulary
they map onto. Importing this package imports nothing else (no registration side effects).
"""
