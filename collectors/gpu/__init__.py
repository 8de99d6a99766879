"""The ``gpu`` collector: NVML and Hopper GPM telemetry of the engine's GPUs
(:class:`collectors.gpu.collector.GpuCollector`; files in docs/run-format.md)."""
