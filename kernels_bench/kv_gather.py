"""The paged-KV-cache gather of one decode step, at serving's batch sizes.

A paged cache (vLLM's layout) holds K and V in blocks of ``block_size`` tokens:
``[num_blocks, block_size, n_kv_heads, head_dim]`` each, per layer. A decode step's
attention reads, for every sequence, the blocks its block table names. This benchmark
gathers them for one layer with ``torch.index_select`` over the block dimension (the blocks
read whole, written once into a dense ``[batch x blocks, block_size, heads, dim]`` buffer):
bytes = read + write (formulas.kv_gather_bytes). The block tables are a random permutation,
so neighbouring blocks of a sequence are not neighbours in memory, as in a long-running
server. Runs on any torch device: on CPU it is how CI checks it; its numbers are the GPU's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kernels_bench.formulas import kv_gather_bytes

__all__ = ["DEFAULT_KV_BATCHES", "KvShape", "kv_gather_case"]

DEFAULT_KV_BATCHES = (1, 8, 32, 64, 128, 256)


@dataclass(frozen=True, slots=True)
class KvShape:
    """Defaults: Llama-3-8B/70B-like GQA (8 KV heads of 128), bf16, 2048-token contexts."""

    n_kv_heads: int = 8
    head_dim: int = 128
    context_tokens: int = 2048
    block_size: int = 16
    dtype: str = "bfloat16"

    @property
    def elem_bytes(self) -> int:
        return {"bfloat16": 2, "float16": 2, "float32": 4}[self.dtype]


@dataclass(frozen=True, slots=True)
class KvCase:
    gather: Callable[[], Any]
    block_table: Any  # [batch, blocks per sequence] int64
    k_cache: Any
    v_cache: Any
    k_out: Any
    v_out: Any
    read_bytes: int
    write_bytes: int


def kv_gather_case(batch: int, shape: KvShape, device: Any, seed: int = 0) -> KvCase:
    """A cache with exactly the blocks ``batch`` sequences need, shuffled block tables, and
    the gather call (K then V)."""
    import torch

    per_seq = -(-shape.context_tokens // shape.block_size)
    n_blocks = batch * per_seq
    dt = getattr(torch, shape.dtype)
    g = torch.Generator().manual_seed(seed)
    dims = (n_blocks, shape.block_size, shape.n_kv_heads, shape.head_dim)
    k = torch.randn(dims, generator=g).to(dt).to(device)
    v = torch.randn(dims, generator=g).to(dt).to(device)
    table = torch.randperm(n_blocks, generator=g).view(batch, per_seq).to(device)
    flat = table.reshape(-1)
    k_out = torch.empty(dims, dtype=dt, device=device)
    v_out = torch.empty(dims, dtype=dt, device=device)

    def gather() -> None:
        torch.index_select(k, 0, flat, out=k_out)
        torch.index_select(v, 0, flat, out=v_out)

    r, w = kv_gather_bytes(batch=batch, context_tokens=per_seq * shape.block_size, n_layers=1,
                           n_kv_heads=shape.n_kv_heads, head_dim=shape.head_dim,
                           elem_bytes=shape.elem_bytes, block_size=shape.block_size)
    return KvCase(gather, table, k, v, k_out, v_out, r, w)
