"""Bandwidth microbenchmarks (HBM, host memory, GPU pairs, collectives, RDMA) measured against
the hardware's stated peaks (docs/kernels_bench.md).

Writes the same kind of records as the collectors (``servescope.records.BandwidthSample``) into
a run directory. torch and triton (the ``kernels`` extra) are imported only inside functions.
"""
