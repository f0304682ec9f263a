"""LiteLLMPolicy against a real OpenAI-compatible HTTP server on the loopback interface."""

from __future__ import annotations

import asyncio
import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

from reasonloop.errors import ConfigError, PolicyError
from reasonloop.policy.base import Completion, Context, Policy, SamplingParams, ToolSpec
from reasonloop.policy.cache import ResponseCache
from reasonloop.policy.litellm import (
    LiteLLMConfig,
    LiteLLMPolicy,
    from_model_string,
    restore_tool_stop,
    tool_system_prompt,
    topk_entropy,
)
from reasonloop.policy.retry import RetryConfig


def _load_server() -> ModuleType:
    name = "reasonloop_tests_openai_server"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("openai_server.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


srv = _load_server()

PYTHON = ToolSpec(
    name="python",
    description="Run Python code.",
    parameters={"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]},
)
FAST = RetryConfig(initial_backoff_s=0.01, max_backoff_s=0.05)
USER = Context(messages=[{"role": "user", "content": "What is 1?"}])


def _policy(server, **kwargs) -> LiteLLMPolicy:
    kwargs.setdefault("api_key", "sk-test-0123456789")
    kwargs.setdefault("backoff", FAST)
    kwargs.setdefault("timeout_s", 10.0)
    return LiteLLMPolicy("openai/test-model", api_base=server.url, **kwargs)


def _generate(policy, tools=(), sampling=None, context=USER) -> Completion:
    return asyncio.run(policy.generate(context, list(tools), sampling or SamplingParams()))


def test_plain_text_usage_and_request_fields():
    with srv.OpenAIServer(srv.fixed(srv.ok("one", prompt_tokens=5, completion_tokens=2))) as server:
        policy = _policy(server)
        out = _generate(policy, sampling=SamplingParams(temperature=0.0, top_p=0.9, max_tokens=33, seed=4, stop=("END",)))
        body = server.requests[0].body
    assert isinstance(policy, Policy)
    assert out.text == "one" and out.finish_reason == "stop" and out.tool_calls == []
    assert out.usage.prompt_tokens == 5 and out.usage.completion_tokens == 2
    assert out.usage.cost_usd is None  # test-model is not in the price map: unknown, not a crash
    assert out.token_ids == [] and out.model == "openai/test-model" and not out.cached
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"], body["stop"]) == (0.0, 0.9, 33, 4, ["END"])
    assert body["messages"] == USER.messages and "tools" not in body
    assert server.requests[0].authorization == "Bearer sk-test-0123456789"
    assert policy.start(USER.messages, []) is None and policy.extend(USER, [], []) is None


def test_cost_from_the_local_price_map():
    # gpt-4o-mini in LiteLLM's bundled map: $0.15 per 1M prompt tokens, $0.60 per 1M completion tokens.
    reply = srv.ok("priced", model="gpt-4o-mini", prompt_tokens=1000, completion_tokens=500)
    with srv.OpenAIServer(srv.fixed(reply)) as server:
        out = asyncio.run(
            LiteLLMPolicy("openai/gpt-4o-mini", api_base=server.url, api_key="sk-t-0123456789").generate(
                USER, [], SamplingParams()
            )
        )
    assert out.usage.cost_usd == pytest.approx(1000 * 0.15e-6 + 500 * 0.60e-6)


def test_openai_tool_calls_valid_and_malformed():
    calls = [srv.tool_call("python", {"code": "print(1)"}, "call_a"), srv.tool_call("python", '{"code": "x', "call_b")]
    with srv.OpenAIServer(srv.fixed(srv.ok(None, tool_calls=calls, finish_reason="tool_calls"))) as server:
        out = _generate(_policy(server), [PYTHON])
        sent_tools = server.requests[0].body["tools"]
    assert sent_tools == [PYTHON.openai_schema()]
    assert [(c.id, c.name, c.arguments) for c in out.tool_calls] == [("call_a", "python", {"code": "print(1)"})]
    assert len(out.parse_errors) == 1 and "not valid JSON" in out.parse_errors[0] and '{"code": "x' in out.parse_errors[0]
    assert out.finish_reason == "tool_calls" and out.text == ""


def test_unknown_tool_name_is_passed_through_for_the_agent():
    calls = [srv.tool_call("rm_rf", {"path": "/"})]
    with srv.OpenAIServer(srv.fixed(srv.ok("", tool_calls=calls))) as server:
        out = _generate(_policy(server), [PYTHON])
    assert [c.name for c in out.tool_calls] == ["rm_rf"] and out.parse_errors == []


def test_tags_format_puts_tools_in_prompt_and_parses_text():
    with srv.OpenAIServer(srv.fixed(srv.ok("Let me run it. <python>print(1)</python>"))) as server:
        context = Context(messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1?"}])
        out = _generate(_policy(server, tool_format="tags"), [PYTHON], context=context)
        body = server.requests[0].body
    assert [(c.name, c.arguments) for c in out.tool_calls] == [("python", {"code": "print(1)"})]
    assert out.message() == {"role": "assistant", "content": "Let me run it. <python>print(1)</python>"}
    assert "tools" not in body and body["stop"] == ["</python>"]
    system = body["messages"][0]["content"]
    assert system.startswith("Be brief.") and "## python" in system and "<python>print(1)</python>" in system
    assert len(body["messages"]) == 2  # tools appended to the existing system message, not a new one
    assert context.messages[0]["content"] == "Be brief."  # the caller's context is not modified


def test_tags_format_restores_the_stripped_stop_string():
    # OpenAI-style servers drop the matched stop string from the text.
    with srv.OpenAIServer(srv.fixed(srv.ok("<python>print(2)"))) as server:
        out = _generate(_policy(server, tool_format="tags"), [PYTHON])
    assert out.text == "<python>print(2)</python>"
    assert [c.arguments for c in out.tool_calls] == [{"code": "print(2)"}] and out.parse_errors == []


def test_json_format_malformed_call_is_a_parse_error():
    text = '<tool_call>{"name": "python", "arguments": {"code": </tool_call>'
    with srv.OpenAIServer(srv.fixed(srv.ok(text))) as server:
        out = _generate(_policy(server, tool_format="json"), [PYTHON])
        body = server.requests[0].body
    assert out.tool_calls == [] and len(out.parse_errors) == 1 and "not valid JSON" in out.parse_errors[0]
    assert body["stop"] == ["</tool_call>"] and body["messages"][0]["role"] == "system"


def test_length_and_empty_choices_are_not_silent_successes():
    with srv.OpenAIServer(srv.sequence([srv.ok("cut he", finish_reason="length"), srv.empty_choices()])) as server:
        policy = _policy(server)
        cut = _generate(policy)
        empty = _generate(policy)
    assert cut.finish_reason == "length" and cut.text == "cut he"
    assert empty.finish_reason == "error" and empty.text == "" and empty.tool_calls == []
    assert empty.parse_errors and "no choices" in empty.parse_errors[0]


def test_logprobs_and_topk_entropy_match_hand_computation():
    # Position 1: alternatives 0.5/0.25/0.25 -> H = 1.5 ln 2. Position 2: 0.3/0.3 renormalise
    # to 0.5/0.5 -> H = ln 2. Position 3: one alternative -> 0.
    tokens = [
        ("a", math.log(0.5), [("a", math.log(0.5)), ("b", math.log(0.25)), ("c", math.log(0.25))]),
        ("d", math.log(0.3), [("d", math.log(0.3)), ("e", math.log(0.3))]),
        ("f", 0.0, [("f", 0.0)]),
    ]
    with srv.OpenAIServer(srv.fixed(srv.ok("adf", logprobs=srv.logprobs_block(tokens)))) as server:
        out = _generate(_policy(server), sampling=SamplingParams(top_logprobs=3))
        body = server.requests[0].body
    assert body["logprobs"] is True and body["top_logprobs"] == 3
    assert out.logprobs == pytest.approx([math.log(0.5), math.log(0.3), 0.0])
    assert out.entropies == pytest.approx([1.5 * math.log(2), math.log(2), 0.0])
    assert out.entropy_kind == "topk" and out.top_k == 3


def test_no_logprobs_in_answer_means_no_entropy():
    with srv.OpenAIServer(srv.fixed(srv.ok("x"))) as server:
        out = _generate(_policy(server), sampling=SamplingParams(logprobs=False))
        assert "logprobs" not in server.requests[0].body
    assert out.logprobs is None and out.entropies is None and out.entropy_kind == "none"


def test_provider_refusing_logprobs_is_asked_again_without_them():
    def handler(request):
        if request.body.get("logprobs"):
            return srv.error(400, "logprobs is not supported by this model")
        return srv.ok("fine")

    with srv.OpenAIServer(handler) as server:
        policy = _policy(server)
        first = _generate(policy, sampling=SamplingParams(top_logprobs=2))
        second = _generate(policy, sampling=SamplingParams(top_logprobs=2))
        sent = [("logprobs" in r.body) for r in server.requests]
    assert first.text == second.text == "fine" and first.logprobs is None
    assert sent == [True, False, False]


def test_cache_hit_skips_the_server_and_returns_the_same_completion(tmp_path):
    calls = [srv.tool_call("python", {"code": "1+1"})]
    with srv.OpenAIServer(srv.fixed(srv.ok("sum", tool_calls=calls))) as server:
        cache = ResponseCache(tmp_path / "cache.sqlite")
        policy = _policy(server)
        policy.cache = cache
        greedy = SamplingParams(temperature=0.0)
        first = _generate(policy, [PYTHON], greedy)
        second = _generate(policy, [PYTHON], greedy)
        assert len(server.requests) == 1
        # A fresh policy on the same file (a resumed run) is served from disk too.
        third = _generate(LiteLLMPolicy(policy.config, cache=ResponseCache(cache.path)), [PYTHON], greedy)
        assert len(server.requests) == 1
        # Different sampling settings are a different request.
        _generate(policy, [PYTHON], SamplingParams(temperature=0.0, max_tokens=7))
        assert len(server.requests) == 2
        # Unseeded sampling at temperature > 0 is not cached: samples must differ.
        _generate(policy, [PYTHON], SamplingParams(temperature=1.0))
        _generate(policy, [PYTHON], SamplingParams(temperature=1.0))
        assert len(server.requests) == 4
    assert not first.cached and second.cached and third.cached
    assert second.model_dump(exclude={"cached"}) == first.model_dump(exclude={"cached"})
    assert second.tool_calls[0].id == first.tool_calls[0].id
    assert len(cache) == 2


def test_errors_are_never_cached(tmp_path):
    with srv.OpenAIServer(srv.sequence([srv.empty_choices(), srv.error(400, "bad"), srv.ok("good")])) as server:
        policy = _policy(server, cache=ResponseCache(tmp_path / "c.sqlite"))
        greedy = SamplingParams(temperature=0.0)
        assert _generate(policy, sampling=greedy).finish_reason == "error"
        with pytest.raises(PolicyError):
            _generate(policy, sampling=greedy)
        assert _generate(policy, sampling=greedy).text == "good"
        assert _generate(policy, sampling=greedy).cached
        assert len(server.requests) == 3


@pytest.mark.parametrize(
    ("reply", "status", "words"),
    [
        (srv.error(400, "Invalid value for 'temperature'"), 400, "http 400"),
        (srv.error(401, "Incorrect API key provided"), 401, "http 401"),
        (srv.error(403, "Forbidden"), 403, "http 403"),
        (srv.error(404, "The model does not exist"), 404, "http 404"),
        (srv.context_length_error(), 400, "context length"),
    ],
)
def test_client_errors_are_raised_after_exactly_one_attempt(reply, status, words):
    with srv.OpenAIServer(srv.fixed(reply)) as server:
        with pytest.raises(PolicyError) as info:
            _generate(_policy(server, max_retries=5))
        assert len(server.requests) == 1
    assert info.value.status_code == status and not info.value.retryable
    assert words in str(info.value)


def test_server_errors_retry_up_to_max_retries_then_raise():
    with srv.OpenAIServer(srv.fixed(srv.error(503, "overloaded"))) as server:
        with pytest.raises(PolicyError) as info:
            _generate(_policy(server, max_retries=2))
        assert len(server.requests) == 3
    assert info.value.retryable and info.value.status_code == 503 and "3 attempts" in str(info.value)


def test_timeout_is_retried_then_raised():
    slow = srv.Reply(body=srv.chat_completion("late"), delay_s=1.5)
    with srv.OpenAIServer(srv.fixed(slow)) as server:
        with pytest.raises(PolicyError) as info:
            _generate(_policy(server, max_retries=1, timeout_s=0.2))
        assert len(server.requests) == 2
    assert info.value.retryable and "timeout" in str(info.value).lower()


def test_config_checks_and_key_is_not_printed():
    policy = from_model_string("openai/x", api_key="sk-hidden-0123456789", tool_format="tags")
    assert "sk-hidden" not in repr(policy) + repr(policy.config) + str(policy.config.__dict__)
    assert policy.config.key_value() == "sk-hidden-0123456789" and policy.name == "openai/x"
    with pytest.raises(ConfigError, match="tool_format"):
        LiteLLMConfig(model="openai/x", tool_format="xml")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="model"):
        LiteLLMConfig(model=" ")
    with pytest.raises(ConfigError, match="num_retries"):
        LiteLLMConfig(model="openai/x", extra={"num_retries": 3})
    assert LiteLLMConfig(model="m", max_retries=7, backoff=FAST).retry.max_retries == 7


def test_pure_helpers():
    assert topk_entropy([0.0]) == 0.0 and topk_entropy([]) == 0.0
    assert topk_entropy([math.log(0.1)] * 4) == pytest.approx(math.log(4))
    assert topk_entropy([0.0, float("-inf")]) == 0.0
    assert restore_tool_stop("<python>x", ["</python>"]) == "<python>x</python>"
    assert restore_tool_stop("<python>x</python> done", ["</python>"]) == "<python>x</python> done"
    assert restore_tool_stop("plain", ["</python>", "STOP"]) == "plain"
    assert tool_system_prompt([PYTHON], "openai") == ""
    assert "<tool_call>" in tool_system_prompt([PYTHON], "json")


def test_request_key_is_canonical_and_cache_file_uses_wal(tmp_path):
    from reasonloop.policy.cache import request_key

    base = {"model": "m", "sampling": {"a": 1, "b": 2}, "messages": [{"role": "user", "content": "x"}], "tools": [], "tool_format": "openai"}
    same = dict(base, sampling={"b": 2, "a": 1}, messages=[{"content": "x", "role": "user"}])
    assert request_key(**base) == request_key(**same)
    assert request_key(**base) != request_key(**dict(base, tool_format="tags"))
    assert request_key(**base) != request_key(**base, extra={"reasoning_effort": "high"})
    with ResponseCache(tmp_path / "wal.sqlite") as cache:
        (mode,) = cache._conn.execute("PRAGMA journal_mode").fetchone()
        cache.put("k", Completion(text="stored", finish_reason="stop"))
        cache._conn.execute("INSERT INTO responses VALUES ('bad', 'm', 0, 'not json')")
        assert mode == "wal" and cache.get("k").text == "stored" and cache.get("bad") is None
        assert (cache.hits, cache.misses, len(cache)) == (1, 1, 2)
