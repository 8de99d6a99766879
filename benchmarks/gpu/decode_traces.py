"""Real torch decode loops on a GPU, recorded with torch.profiler: the same model step run
eagerly (one launch per op) and replayed from a CUDA graph (one launch per step), so the
kernel analysis can be checked on traces whose cause is known (issue 11's Done-when).

The model is a Llama-shaped decoder stack with random weights: per layer an RMSNorm written
out in elementwise ops (as eager Hugging Face code runs it), a fused QKV GEMM, the new K/V
written into a static cache at a device-side position, SDPA over the cache, the output
projection, a second RMSNorm, a gated MLP; then the LM head and a greedy argmax whose tokens
are copied to the host every step (a server streams them), which is the step's host sync.
Each decode step is one ``ProfilerStep#N`` (``prof.step()``).

    python3 benchmarks/gpu/decode_traces.py OUT_DIR [--steps 40] [--layers 8] [--batch 8]

writes ``OUT_DIR/decode-eager.json.gz`` and ``OUT_DIR/decode-graph.json.gz`` and prints one
JSON line per trace (events, steps, wall time per step). torch is imported inside functions:
the module imports on any machine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["DecodeShape", "main", "record_decode_trace"]


@dataclass(frozen=True, slots=True)
class DecodeShape:
    layers: int = 8
    batch: int = 8
    hidden: int = 1024
    heads: int = 16
    kv_heads: int = 4
    ffn: int = 2816
    vocab: int = 32000
    context: int = 512


def _weights(torch: Any, s: DecodeShape, dev: str) -> dict[str, Any]:
    g = torch.Generator(device=dev).manual_seed(0)
    hd = s.hidden // s.heads
    bf = torch.bfloat16

    def w(*shape: int) -> Any:
        return (torch.randn(*shape, generator=g, device=dev, dtype=torch.float32)
                * shape[0] ** -0.5).to(bf)

    qkv = (s.heads + 2 * s.kv_heads) * hd
    return {"layers": [{"qkv": w(s.hidden, qkv), "o": w(s.hidden, s.hidden),
                        "up": w(s.hidden, 2 * s.ffn), "down": w(s.ffn, s.hidden),
                        "n1": torch.ones(s.hidden, device=dev, dtype=bf),
                        "n2": torch.ones(s.hidden, device=dev, dtype=bf),
                        "k": torch.randn(s.batch, s.kv_heads, s.context, hd, generator=g,
                                         device=dev, dtype=torch.float32).to(bf),
                        "v": torch.randn(s.batch, s.kv_heads, s.context, hd, generator=g,
                                         device=dev, dtype=torch.float32).to(bf)}
                       for _ in range(s.layers)],
            "embed": w(s.vocab, s.hidden), "head": w(s.hidden, s.vocab),
            "norm": torch.ones(s.hidden, device=dev, dtype=bf)}


def _rms(torch: Any, x: Any, w: Any) -> Any:
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).to(x.dtype) * w


def _step_fn(torch: Any, s: DecodeShape, W: dict[str, Any]) -> Any:
    import torch.nn.functional as F

    hd = s.hidden // s.heads

    def step(tokens: Any, pos: Any) -> Any:
        x = W["embed"][tokens]  # (batch, hidden)
        for L in W["layers"]:
            h = _rms(torch, x, L["n1"])
            q, k, v = (h @ L["qkv"]).split([s.heads * hd, s.kv_heads * hd, s.kv_heads * hd], -1)
            L["k"].index_copy_(2, pos, k.view(s.batch, s.kv_heads, 1, hd))
            L["v"].index_copy_(2, pos, v.view(s.batch, s.kv_heads, 1, hd))
            a = F.scaled_dot_product_attention(q.view(s.batch, s.heads, 1, hd), L["k"], L["v"],
                                               enable_gqa=True)
            x = x + a.reshape(s.batch, s.hidden) @ L["o"]
            gate, up = (_rms(torch, x, L["n2"]) @ L["up"]).chunk(2, -1)
            x = x + (F.silu(gate) * up) @ L["down"]
        logits = _rms(torch, x, W["norm"]) @ W["head"]
        return logits.argmax(-1)

    return step


def record_decode_trace(out: Path, *, graph: bool, steps: int, shape: DecodeShape,
                        warmup_steps: int = 3, device: str = "cuda") -> dict[str, Any]:
    """Run ``steps`` decode steps (after ``warmup_steps`` unprofiled ones) under
    torch.profiler, eagerly or replaying one CUDA graph per step; write the gzip trace to
    ``out`` and return what was recorded. ``device="cpu"`` (eager only, CPU activity) is
    the smoke run of this code on a machine without a GPU."""
    import torch
    from torch.profiler import ProfilerActivity, profile, schedule

    dev = device
    cuda = dev == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()
    W = _weights(torch, shape, dev)
    step = _step_fn(torch, shape, W)
    tokens = torch.zeros(shape.batch, dtype=torch.long, device=dev)
    pos = torch.zeros(1, dtype=torch.long, device=dev)
    with torch.no_grad():
        if graph:
            s = torch.cuda.Stream()  # type: ignore[no-untyped-call]
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(3):
                    step(tokens, pos)
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                next_tokens = step(tokens, pos)

            def one() -> Any:
                g.replay()
                tokens.copy_(next_tokens)
                pos.add_(1).remainder_(shape.context)
                return next_tokens.cpu()  # the host sync a server makes to stream tokens
        else:
            def one() -> Any:
                nonlocal tokens
                tokens = step(tokens, pos)
                pos.add_(1).remainder_(shape.context)
                return tokens.cpu()

        for _ in range(warmup_steps):
            one()
        sync()
        sched = schedule(wait=0, warmup=1, active=steps, repeat=1)
        t0 = time.perf_counter()
        acts = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
        with profile(activities=acts,
                     schedule=sched, record_shapes=False, with_stack=False) as prof:
            for _ in range(steps + 1):
                one()
                prof.step()
        wall = time.perf_counter() - t0
    raw = out.with_suffix("")  # .json
    prof.export_chrome_trace(str(raw))
    with open(raw, "rb") as src, gzip.open(out, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst)
    events = len(json.loads(raw.read_bytes()).get("traceEvents", []))
    os.unlink(raw)
    return {"file": out.name, "graph": graph, "steps": steps, "events": events,
            "wall_per_step_ms": round(wall / (steps + 1) * 1e3, 3),
            "gz_bytes": out.stat().st_size, "shape": asdict(shape),
            "device": torch.cuda.get_device_name() if cuda else "cpu",
            "torch": torch.__version__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--prefix", default="decode")
    ap.add_argument("--only", choices=("eager", "graph"), default=None)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    shape = DecodeShape(layers=a.layers, batch=a.batch, hidden=a.hidden,
                        ffn=int(a.hidden * 2.75) // 64 * 64)
    for mode in ("eager", "graph"):
        if a.only and a.only != mode:
            continue
        info = record_decode_trace(a.out / f"{a.prefix}-{mode}.json.gz", graph=mode == "graph",
                                   steps=a.steps, shape=shape)
        print(json.dumps(info), flush=True)


if __name__ == "__main__":
    main()
