"""Kernel categories from the kernel's name (and the event's kind for copies and fills).

Rules, first match wins, on the lower-cased name (docs/metrics.md, "Kernel categories"):
memcpy/memset events by kind; then communication, attention, GEMM (attention first, so a
CUTLASS FMHA kernel is attention, not GEMM; communication first, so an NCCL kernel never
counts as compute); everything else is ``other`` (elementwise, norms, activations, sampling).
"""

from __future__ import annotations

import re
from enum import StrEnum

from servescope.records.kernels import TraceEventKind

__all__ = ["CATEGORY_PATTERNS", "KernelCategory", "categorize"]


class KernelCategory(StrEnum):
    GEMM = "gemm"
    ATTENTION = "attention"
    COMMUNICATION = "communication"
    MEMCPY_MEMSET = "memcpy_memset"
    OTHER = "other"  # elementwise and everything unrecognized


CATEGORY_PATTERNS: tuple[tuple[KernelCategory, re.Pattern[str]], ...] = (
    # NCCL, vLLM's custom all-reduce (cross_device_reduce_*), SGLang/TRT-LLM custom AR
    (KernelCategory.COMMUNICATION, re.compile(
        r"nccl|all_?reduce|all_?gather|reduce_?scatter|all_?to_?all|cross_device|custom_ar"
        r"|allreduce")),
    (KernelCategory.ATTENTION, re.compile(
        r"flash|fmha|attention|attn|paged|flashinfer|\bmha|_mha")),
    (KernelCategory.GEMM, re.compile(
        r"gemm|cutlass|cublas|xmma|nvjet|matmul|\bmm_|_mm\b|splitk|gemv|wgmma")),
)


def categorize(name: str, kind: str) -> KernelCategory:
    """The category of one GPU event."""
    if kind in (TraceEventKind.MEMCPY.value, TraceEventKind.MEMSET.value):
        return KernelCategory.MEMCPY_MEMSET
    low = name.lower()
    for category, pattern in CATEGORY_PATTERNS:
        if pattern.search(low):
            return category
    return KernelCategory.OTHER
