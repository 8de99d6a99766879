"""The GPU-half facts each engine spec carries (process roles, profiler control, OTel) are
well-formed: every pattern compiles and matches the examples written beside it, and no
process title is claimed by two roles of one engine."""

from __future__ import annotations

import fnmatch
import re

import pytest

from servescope.engines.observability import ProcessRole, StepAnnotation
from servescope.engines.registry import ENGINES, engine_names, get_spec

SPECS = ENGINES.values()


@pytest.mark.parametrize("spec", SPECS, ids=engine_names())
def test_process_roles(spec):
    roles = spec.process_roles
    for role in roles:
        re.compile(role.title)
        assert role.examples, role
        for title in role.examples:
            assert role.matches(title), (role.title, title)
            claimed = [r.role for r in roles if r.matches(title)]
            assert claimed == [role.role], (title, claimed)
    if roles:  # someone must run the model, or a sampler has nothing to look at
        assert any(r.runs_model for r in roles)


def test_process_roles_known_titles():
    """The titles the GPU half will look for (engines.md §1.6, §2.6; gpu-half.md §D)."""
    def role_of(engine: str, title: str) -> str | None:
        found = [r for r in get_spec(engine).process_roles if r.matches(title)]
        return found[0].role if found else None

    assert role_of("vllm", "VLLM::EngineCore") == "engine_core"
    assert role_of("vllm", "VLLM::Worker_TP3") == "worker"
    assert role_of("vllm", "vllm serve m --port 8000") is None  # the API server keeps argv
    assert role_of("sglang", "sglang::scheduler_TP0") == "scheduler"
    assert role_of("sglang", "sglang::detokenizer") == "detokenizer"
    assert role_of("sglang", "sglang::schedulerx") is None
    assert get_spec("trtllm").process_roles == ()  # titles unconfirmed: none invented


def test_match_is_whole_title():
    role = ProcessRole("detokenizer", r"sglang::detokenizer", False, ("sglang::detokenizer",))
    assert not role.matches("sglang::detokenizer_router")


@pytest.mark.parametrize("spec", [s for s in SPECS if s.profiler is not None],
                         ids=[s.name for s in SPECS if s.profiler is not None])
def test_profiler_control(spec):
    p = spec.profiler
    assert p.source
    assert p.start.method == "POST"
    assert p.start.path.startswith("/")
    assert p.stop is None or p.stop.path.startswith("/")
    assert all(f.startswith("--") for f in p.launch_flags)
    assert p.steps_field is None or p.steps_field in p.body_fields
    assert p.output_dir_field is None or p.output_dir_field in p.body_fields
    assert p.trace_files
    assert p.step_annotations
    for tf in p.trace_files:
        assert tf.glob
        assert "/" not in tf.glob
        assert tf.what
        assert tf.glob.endswith(".gz") == tf.gzip
    for ann in p.step_annotations:
        re.compile(ann.pattern)
        assert ann.examples
        for name in ann.examples:
            assert ann.match(name) is not None, (ann.pattern, name)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]+", k) and v for k, v in p.env.items())


def test_profiler_facts():
    vllm, sglang, trt = (get_spec(n).profiler for n in ("vllm", "sglang", "trtllm"))
    assert vllm is not None
    assert sglang is not None
    assert trt is not None
    assert vllm.launch_flags == ("--profiler-config",)  # routes exist only with it
    assert (vllm.steps_field, sglang.steps_field, trt.steps_field) == (
        "max_iterations", "num_steps", "num_steps")
    assert vllm.with_stack
    assert sglang.with_stack
    assert sglang.record_shapes
    assert not trt.with_stack
    assert not trt.record_shapes
    assert fnmatch.fnmatch("dp0_pp0_tp0_dcp0_ep0_rank0.1760000000000.pt.trace.json.gz",
                           vllm.trace_files[0].glob)
    assert fnmatch.fnmatch("1760000000.12-TP-0.trace.json.gz", sglang.trace_files[0].glob)
    assert fnmatch.fnmatch("trtllm-trace-1760000000-1a2b3c4d-rank-0.json",
                           trt.trace_files[0].glob)
    assert vllm.step_annotations[0].match("execute_context_1(512)_generation_7(7)") == {
        "context_reqs": "1", "context_tokens": "512", "generation_reqs": "7",
        "generation_tokens": "7"}
    step = StepAnnotation(sglang.step_annotations[0].pattern, ())
    assert step.match("step[DECODE bs=32]") == {"mode": "DECODE", "bs": "32", "detail": ""}
    assert step.match("execute_context_1(512)_generation_7(7)") is None


@pytest.mark.parametrize("spec", [s for s in SPECS if s.otel is not None],
                         ids=[s.name for s in SPECS if s.otel is not None])
def test_otel(spec):
    o = spec.otel
    assert o.source
    assert o.endpoint_flags
    assert all(f.startswith("--") for f in (*o.endpoint_flags, *o.enable_flags))
    assert o.attributes
    assert all(a.startswith("gen_ai.") for a in o.attributes)
    assert len(set(o.attributes)) == len(o.attributes)
    if o.request_span is not None:
        assert o.request_span_examples
        for name in o.request_span_examples:
            assert re.fullmatch(o.request_span, name), (o.request_span, name)
    else:
        assert o.request_span_examples == ()
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]+", k) and v for k, v in o.env.items())


def test_otel_facts():
    vllm, sglang, trt = (get_spec(n).otel for n in ("vllm", "sglang", "trtllm"))
    assert vllm is not None
    assert sglang is not None
    assert trt is not None
    assert vllm.endpoint_flags == sglang.endpoint_flags == ("--otlp-traces-endpoint",)
    assert trt.endpoint_flags == ("--otlp_traces_endpoint",)
    assert sglang.enable_flags == ("--enable-trace",)
    assert vllm.request_span == "llm_request"
    assert "gen_ai.usage.prompt_tokens" in vllm.attributes  # the engines' older key
