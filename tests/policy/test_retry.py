"""The retry rules: a pure classifier over real exception types, and the retry loop."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time

import httpx
import pytest

from reasonloop.policy.retry import (
    RetryConfig,
    RetryDecision,
    backoff_seconds,
    call_with_retries,
    classify,
    parse_retry_after,
)


def _response(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers or {}, request=httpx.Request("POST", "http://x/v1/chat/completions"))


def _litellm():
    import litellm

    return litellm


def test_litellm_errors_are_classified_by_status():
    lm = _litellm()
    cases = [
        (lm.RateLimitError("slow", "openai", "m", response=_response(429)), True, 429),
        (lm.InternalServerError("boom", "openai", "m", response=_response(500)), True, 500),
        (lm.ServiceUnavailableError("down", "openai", "m", response=_response(503)), True, 503),
        (lm.BadRequestError("bad", "m", "openai", response=_response(400)), False, 400),
        (lm.AuthenticationError("no", "openai", "m", response=_response(401)), False, 401),
        (lm.PermissionDeniedError("no", "openai", "m", response=_response(403)), False, 403),
        (lm.NotFoundError("no", "m", "openai", response=_response(404)), False, 404),
        (lm.ContextWindowExceededError("too long", "m", "openai", response=_response(400)), False, 400),
        (lm.Timeout("slow", "m", "openai"), True, 408),
    ]
    for exc, retry, status in cases:
        decision = classify(exc)
        assert (decision.retry, decision.status_code) == (retry, status), type(exc).__name__
    assert classify(cases[7][0]).reason == "context length exceeded"


def test_retry_after_is_read_from_litellm_response_headers():
    lm = _litellm()
    exc = lm.RateLimitError("slow", "openai", "m", response=_response(429, {"Retry-After": "7"}))
    # LiteLLM keeps the provider's headers here rather than on ``response``.
    exc.litellm_response_headers = httpx.Headers({"retry-after": "3", "retry-after-ms": "2500"})
    assert classify(exc) == RetryDecision(retry=True, wait_at_least=2.5, reason="http 429", status_code=429)


def test_context_length_text_on_a_400_is_named_but_a_429_stays_retryable():
    http400 = httpx.HTTPStatusError("maximum context length is 8192 tokens", request=_response(400).request, response=_response(400))
    assert classify(http400) == RetryDecision(retry=False, reason="context length exceeded", status_code=400)
    http429 = httpx.HTTPStatusError("rate limit on context length tokens", request=_response(429).request, response=_response(429, {"retry-after": "2"}))
    assert classify(http429) == RetryDecision(retry=True, wait_at_least=2.0, reason="http 429", status_code=429)


def test_transport_errors_without_status():
    request = httpx.Request("POST", "http://x")
    assert classify(httpx.ReadTimeout("t", request=request)).reason == "timeout"
    assert classify(TimeoutError()).retry
    assert classify(httpx.ConnectError("refused", request=request)) == RetryDecision(retry=True, reason="connection error")
    assert classify(ConnectionResetError()).retry
    assert classify(ValueError("a bug")) == RetryDecision(retry=False, reason="ValueError")
    assert classify(_litellm().APIConnectionError("connection refused", "openai", "m")).retry


def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after": "1"}) == 1.0
    assert parse_retry_after({"retry-after": " 2.5 "}) == 2.5
    assert parse_retry_after({"retry-after-ms": "150", "retry-after": "9"}) == pytest.approx(0.15)
    assert parse_retry_after({"retry-after-ms": "soon", "retry-after": "9"}) == 9.0
    assert parse_retry_after({"retry-after": "-4"}) == 0.0
    assert parse_retry_after({"retry-after": "nan"}) is None
    assert parse_retry_after({"retry-after": "whenever"}) is None
    assert parse_retry_after({}) is None
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(30.0)
    assert parse_retry_after({"retry-after": email.utils.formatdate(now - 30, usegmt=True)}, now=now) == 0.0


def test_backoff_is_exponential_jittered_and_capped():
    config = RetryConfig(initial_backoff_s=1.0, max_backoff_s=8.0, jitter=0.5)
    rng = random.Random(0)
    for retry_number, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        waits = [backoff_seconds(retry_number, config, rng) for _ in range(200)]
        assert base * 0.5 <= min(waits) and max(waits) <= base
        assert max(waits) - min(waits) > base * 0.3  # jitter actually spreads the waits
    assert backoff_seconds(3, RetryConfig(initial_backoff_s=1.0, jitter=0.0), rng) == 4.0


def test_retry_config_checks():
    with pytest.raises(ValueError):
        RetryConfig(max_retries=-1)
    with pytest.raises(ValueError):
        RetryConfig(initial_backoff_s=2.0, max_backoff_s=1.0)
    with pytest.raises(ValueError):
        RetryConfig(jitter=1.5)


class _Flaky:
    """Raises the given exceptions in turn, then returns 'ok'."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls: list[float] = []

    async def __call__(self) -> str:
        self.calls.append(time.monotonic())
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def _run(flaky: _Flaky, **config) -> str:
    cfg = RetryConfig(initial_backoff_s=0.001, max_backoff_s=0.01, **config)
    return asyncio.run(call_with_retries(flaky, config=cfg, rng=random.Random(0)))


def test_call_with_retries_counts_attempts():
    assert _run(_Flaky(ConnectionResetError(), TimeoutError()), max_retries=2) == "ok"
    flaky = _Flaky(*[ConnectionResetError() for _ in range(5)])
    with pytest.raises(ConnectionResetError):
        _run(flaky, max_retries=3)
    assert len(flaky.calls) == 4
    flaky = _Flaky(ValueError("bug"))
    with pytest.raises(ValueError):
        _run(flaky, max_retries=3)
    assert len(flaky.calls) == 1


def test_call_with_retries_sleeps_at_least_retry_after():
    lm = _litellm()
    limited = lm.RateLimitError("slow", "openai", "m", response=_response(429, {"retry-after-ms": "300"}))
    limited.litellm_response_headers = httpx.Headers({"retry-after-ms": "300"})
    flaky = _Flaky(limited)
    seen: list[tuple[int, RetryDecision, float]] = []
    cfg = RetryConfig(initial_backoff_s=0.001, max_backoff_s=0.01)
    result = asyncio.run(call_with_retries(flaky, config=cfg, rng=random.Random(1), on_retry=lambda *a: seen.append(a)))
    assert result == "ok" and len(flaky.calls) == 2
    assert flaky.calls[1] - flaky.calls[0] >= 0.3
    assert seen[0][0] == 1 and seen[0][1].status_code == 429 and seen[0][2] >= 0.3


def test_retry_after_beyond_the_limit_fails_at_once():
    lm = _litellm()
    limited = lm.RateLimitError("slow", "openai", "m", response=_response(429))
    limited.litellm_response_headers = httpx.Headers({"retry-after": "3600"})
    flaky = _Flaky(limited)
    with pytest.raises(lm.RateLimitError):
        _run(flaky, max_retries=3, max_retry_after_s=60.0)
    assert len(flaky.calls) == 1
