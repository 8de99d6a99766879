"""Categories, percentiles, shares by step phase, top kernels, and A vs B."""

from __future__ import annotations

import json
import statistics

import pytest

from analyzers.kernels import KernelCategory, analyze_kernels, categorize, compare_kernels
from servescope.records.kernels import TraceEventKind
from tests.analyzers.kernels._events import Trace


@pytest.mark.parametrize(("name", "kind", "cat"), [
    ("ampere_bf16_s16816gemm_bf16_128x128_ldg8_f2f_tn", "kernel", KernelCategory.GEMM),
    ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", "kernel",
     KernelCategory.GEMM),
    ("nvjet_hsh_128x256_64x4_2x1_v_bz_coopA_NTN", "kernel", KernelCategory.GEMM),
    ("cutlass::Kernel2<cutlass_80_tensorop_bf16_s16816gemm_relu>", "kernel",
     KernelCategory.GEMM),
    ("void flash_fwd_splitkv_kernel<Flash_fwd_kernel_traits<128>>", "kernel",
     KernelCategory.ATTENTION),
    ("fmha_cutlassF_bf16_aligned_64x128_rf_sm80", "kernel", KernelCategory.ATTENTION),
    ("void vllm::paged_attention_v2_kernel<bf16>", "kernel", KernelCategory.ATTENTION),
    ("ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)", "kernel",
     KernelCategory.COMMUNICATION),
    ("void vllm::cross_device_reduce_1stage<bf16, 2>", "kernel",
     KernelCategory.COMMUNICATION),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>>",
     "kernel", KernelCategory.OTHER),
    ("Memcpy HtoD (Pinned -> Device)", "memcpy", KernelCategory.MEMCPY_MEMSET),
    ("Memset (Device)", "memset", KernelCategory.MEMCPY_MEMSET),
])
def test_categories(name: str, kind: str, cat: KernelCategory) -> None:
    assert categorize(name, kind) is cat


PREFILL = "execute_context_2(512)_generation_0(0)"
DECODE = "execute_context_0(0)_generation_4(4)"


def two_phase_trace(gemm_decode_ns: int = 40_000) -> Trace:
    """One prefill step (gemm 300 + attention 100 + other 100 µs) and three decode steps
    (gemm ``gemm_decode_ns`` + flash 20 µs + memcpy 5 µs + two elementwise 3 and 7 µs)."""
    t = Trace()
    t.step(PREFILL, 0, 1_000_000)
    t.launch("sm90_xmma_gemm_a", 10_000, 5_000, 20_000, 300_000)
    t.launch("flash_fwd_kernel", 20_000, 5_000, 320_000, 100_000)
    t.launch("elementwise_add", 30_000, 5_000, 420_000, 100_000)
    for k in range(3):
        t0 = 2_000_000 + k * 1_000_000
        t.step(DECODE, t0, 500_000)
        t.launch("sm90_xmma_gemm_a", t0 + 1_000, 2_000, t0 + 10_000, gemm_decode_ns)
        t.launch("flash_fwd_kernel", t0 + 3_000, 2_000, t0 + 100_000, 20_000)
        t.launch("Memcpy DtoD", t0 + 5_000, 2_000, t0 + 150_000, 5_000,
                 runtime="cudaMemcpyAsync", kind=TraceEventKind.MEMCPY)
        t.launch("elementwise_add", t0 + 7_000, 2_000, t0 + 200_000, 3_000)
        t.launch("elementwise_mul", t0 + 9_000, 2_000, t0 + 250_000, 7_000)
    return t


def test_category_stats_and_percentiles() -> None:
    res = analyze_kernels(two_phase_trace().frame(), engine="vllm")
    cats = {c.category: c for c in res.categories}
    assert set(cats) == {c.value for c in KernelCategory}
    other = [100_000] + [3_000, 7_000] * 3
    o = cats["other"]
    assert (o.count, o.total_ns) == (7, sum(other))
    assert o.mean_ns == pytest.approx(statistics.fmean(other))
    q = statistics.quantiles(other, n=100, method="inclusive")  # linear interpolation
    assert (o.p50_ns, o.p90_ns, o.p99_ns) == pytest.approx((q[49], q[89], q[98]))
    total = 300_000 + 100_000 + 100_000 + 3 * (40_000 + 20_000 + 5_000 + 10_000)
    assert cats["gemm"].total_ns == 300_000 + 3 * 40_000
    assert cats["gemm"].share_frac == pytest.approx((300_000 + 120_000) / total)
    assert (cats["memcpy_memset"].count, cats["memcpy_memset"].total_ns) == (3, 15_000)
    assert cats["communication"].count == 0
    assert sum(c.share_frac for c in res.categories) == pytest.approx(1.0)


def test_phase_shares_and_top_kernels() -> None:
    res = analyze_kernels(two_phase_trace().frame(), engine="vllm")
    assert res.phase_shares["prefill"]["gemm"] == pytest.approx(0.6)
    assert res.phase_shares["prefill"]["attention"] == pytest.approx(0.2)
    assert res.phase_shares["decode"]["gemm"] == pytest.approx(40 / 75)
    assert res.phase_shares["decode"]["memcpy_memset"] == pytest.approx(5 / 75)
    assert res.phase_shares["decode"]["other"] == pytest.approx(10 / 75)
    top = analyze_kernels(two_phase_trace().frame(), top_n=3).top
    assert [(k.name, k.count, k.total_ns) for k in top] == [
        ("sm90_xmma_gemm_a", 4, 420_000), ("flash_fwd_kernel", 4, 160_000),
        ("elementwise_add", 4, 109_000)]
    assert top[0].mean_ns == 105_000
    assert top[0].category == "gemm"


def test_compare_names_what_got_slower() -> None:
    a = two_phase_trace(40_000).frame()
    b = two_phase_trace(70_000).frame()  # the decode GEMM 30 µs slower
    cmp = compare_kernels(a, b, engine="vllm", phase="decode")
    assert (cmp.steps_a, cmp.steps_b) == (3, 3)
    first = cmp.categories[0]
    assert (first.name, first.a_ns, first.b_ns, first.delta_ns) == (
        "gemm", 40_000, 70_000, 30_000)
    assert first.ratio == 1.75
    assert all(d.delta_ns == 0 for d in cmp.categories[1:])
    assert [(d.name, d.delta_ns) for d in cmp.slower] == [("sm90_xmma_gemm_a", 30_000)]
    assert cmp.faster == []
    assert cmp.busy_mean_b_ns - cmp.busy_mean_a_ns == 30_000
    # over all steps, the prefill step dilutes the per-step mean: 3 x 30 µs / 4 steps
    whole = compare_kernels(a, b)
    assert whole.categories[0].delta_ns == 90_000 / 4
    # swapping A and B lists the kernel as faster
    json.dumps(cmp.to_json(), allow_nan=False)
    back = compare_kernels(b, a, phase="decode")
    assert [(d.name, d.delta_ns) for d in back.faster] == [("sm90_xmma_gemm_a", -30_000)]
