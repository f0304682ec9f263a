"""API fault storms and secret leaks, against a real loopback OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
import uuid
from pathlib import Path
from types import ModuleType

import pytest

from reasonloop.errors import PolicyError
from reasonloop.policy.base import Context, SamplingParams, ToolSpec
from reasonloop.policy.litellm import LiteLLMPolicy
from reasonloop.policy.retry import RetryConfig
from reasonloop.trajectory.schema import PolicyStep, Trajectory


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

N_REQUESTS = 200
MAX_RETRIES = 5
RETRY_AFTER_S = 1.0


async def _ask_all(policy: LiteLLMPolicy, prompts: list[str]) -> list:
    # All requests in flight at once: no semaphore, concurrency = len(prompts).
    async def one(prompt: str):
        context = Context(messages=[{"role": "user", "content": prompt}])
        return await policy.generate(context, [], SamplingParams(max_tokens=8))

    return await asyncio.gather(*(one(p) for p in prompts), return_exceptions=True)


@pytest.mark.slow  # 10-20 s on 2 cores: ~430 HTTP requests through LiteLLM plus a 1 s Retry-After
def test_api_fault_storm_all_succeed_within_attempt_budget_and_retry_after():
    """429 + Retry-After on every first attempt, then 10% 500s; 200 concurrent requests."""
    handler = srv.storm(retry_after=str(int(RETRY_AFTER_S)), error_rate=0.1, error_status=500, seed=11)
    prompts = [f"storm request {i}" for i in range(N_REQUESTS)]
    with srv.OpenAIServer(handler) as server:
        policy = LiteLLMPolicy(
            "openai/storm-model",
            api_base=server.url,
            api_key="sk-storm-0123456789",
            max_retries=MAX_RETRIES,
            backoff=RetryConfig(initial_backoff_s=0.05, max_backoff_s=0.4),
            timeout_s=20.0,
            jitter_seed=0,
        )
        results = asyncio.run(_ask_all(policy, prompts))
        groups = server.by_key()

    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    assert [r.text for r in results] == [f"echo: {p}" for p in prompts]
    assert sorted(groups) == sorted(prompts)
    server_errors = 0
    for prompt, attempts in groups.items():
        assert 2 <= len(attempts) <= 1 + MAX_RETRIES, prompt
        assert attempts[0].status == 429 and attempts[-1].status == 200
        assert all(a.status == 500 for a in attempts[1:-1])
        # Server-side arrival times: the second attempt came after Retry-After had elapsed.
        assert attempts[1].arrival - attempts[0].arrival >= RETRY_AFTER_S, prompt
        server_errors += len(attempts) - 2
    # Which attempts get a 500 depends only on (seed, request, attempt), so the count is
    # fixed: 29 injected 500s (at most 2 in a row for one request), all absorbed.
    assert server_errors == 29
    assert len(server.requests) == 2 * N_REQUESTS + 29


@pytest.mark.parametrize(("status", "message"), [(400, "Invalid 'messages'"), (401, "Incorrect API key")])
def test_no_retry_on_client_errors_under_concurrency(status, message):
    prompts = [f"doomed {status} {i}" for i in range(20)]
    with srv.OpenAIServer(srv.fixed(srv.error(status, message))) as server:
        policy = LiteLLMPolicy(
            "openai/m", api_base=server.url, api_key="sk-x-0123456789", max_retries=MAX_RETRIES,
            backoff=RetryConfig(initial_backoff_s=0.01, max_backoff_s=0.02),
        )
        results = asyncio.run(_ask_all(policy, prompts))
        groups = server.by_key()
    assert all(isinstance(r, PolicyError) and r.status_code == status and not r.retryable for r in results)
    assert {k: len(v) for k, v in groups.items()} == dict.fromkeys(prompts, 1)


PYTHON = ToolSpec(name="python", parameters={"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]})


def _reflecting_handler(request):
    """A hostile server that echoes the caller's Authorization header into everything it says."""
    auth = request.authorization or ""
    mode = request.key.split(":")[0]
    if mode == "unauthorized":
        return srv.error(401, f"Incorrect API key provided: {auth}. You passed {auth.removeprefix('Bearer ')}")
    if mode == "broken":
        return srv.error(500, f"internal error while serving {auth}")
    if mode == "slow":
        return srv.Reply(body=srv.chat_completion("late"), delay_s=1.0)
    key = auth.removeprefix("Bearer ")
    call = srv.tool_call("python", '{"code": "print(\'' + key + "')")
    return srv.ok(f"your key is {key}", tool_calls=[call])


@pytest.mark.parametrize("source", ["env", "explicit"])
def test_canary_key_never_leaks(source, monkeypatch, caplog, capfd):
    canary = ("sk-canary-" if source == "env" else "plain-canary-") + uuid.uuid4().hex
    if source == "env":
        monkeypatch.setenv("OPENAI_API_KEY", canary)
    caplog.set_level(logging.DEBUG)
    for name in ("LiteLLM", "LiteLLM Router", "openai", "httpx", "reasonloop"):
        caplog.set_level(logging.DEBUG, logger=name)

    with srv.OpenAIServer(_reflecting_handler) as server:
        policy = LiteLLMPolicy(
            "openai/canary-model",
            api_base=server.url,
            api_key=None if source == "env" else canary,
            max_retries=1,
            timeout_s=0.3,
            backoff=RetryConfig(initial_backoff_s=0.01, max_backoff_s=0.02),
        )

        async def scenario():
            outcomes = []
            for mode in ("unauthorized", "broken", "slow", "malformed"):
                context = Context(messages=[{"role": "user", "content": f"{mode}: go"}])
                try:
                    outcomes.append(await policy.generate(context, [PYTHON], SamplingParams(max_tokens=8)))
                except PolicyError as exc:
                    outcomes.append(exc)
            return outcomes

        unauthorized, broken, slow, malformed = asyncio.run(scenario())
        sent = {r.authorization for r in server.requests}

    assert sent == {f"Bearer {canary}"}  # the key really was used on every attempt
    errors = [unauthorized, broken, slow]
    assert [type(e).__name__ for e in errors] == ["PolicyError"] * 3
    assert [e.status_code for e in errors] == [401, 500, 408]
    assert malformed.parse_errors and malformed.tool_calls == []

    step = PolicyStep(
        text=malformed.text, tool_calls=malformed.tool_calls, parse_errors=malformed.parse_errors,
        finish_reason=malformed.finish_reason, usage=malformed.usage, model=malformed.model,
    )
    trajectory = Trajectory(model=policy.name, steps=[step], status="error", error=str(unauthorized))
    texts = [
        malformed.model_dump_json(),
        trajectory.to_json(),
        caplog.text,
        *(m for r in caplog.records for m in (r.getMessage(), str(r.exc_text))),
        *(s for e in errors for s in (str(e), repr(e), repr(e.args))),
        repr(policy),
        repr(policy.config),
    ]
    captured = capfd.readouterr()
    texts += [captured.out, captured.err]
    assert any(r.name.startswith("LiteLLM") for r in caplog.records)  # LiteLLM's debug logs were captured
    assert "[REDACTED]" in str(unauthorized) and "[REDACTED]" in malformed.text
    for text in texts:
        assert canary not in text
