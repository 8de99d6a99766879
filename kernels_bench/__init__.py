"""Bandwidth benchmarks (HBM, NVLink/collectives, RDMA) measured against the hardware's peak.

Part of the design, not built yet: no benchmark lives here so far, and nothing imports this
package. It will write the same kind of records into a run directory as the collectors do.
"""
