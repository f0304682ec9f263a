"""The one retry policy for API calls.

Retried: HTTP 429, 408 and 5xx answers, timeouts and connection errors. Never
retried: every other 4xx (400, 401, 403, 404, 413, 422...) and context-length
errors, whatever status the provider gives them. A ``Retry-After`` header
(seconds or an HTTP date) or ``retry-after-ms`` sets the least time to wait;
otherwise the wait is exponential backoff with jitter, capped.

:func:`classify` is a pure function of the exception, so the rules are tested
without a network; it reads attributes (``status_code``, ``response.headers``,
``litellm_response_headers``, class names) instead of importing LiteLLM, so the
same rules hold for LiteLLM, OpenAI SDK, httpx and stdlib exceptions.

Attempts per request are at most ``1 + max_retries``. The SDKs' own retries must
be switched off by the caller (LiteLLM: ``num_retries=0, max_retries=0``) or the
attempts multiply.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

__all__ = [
    "RetryConfig",
    "RetryDecision",
    "backoff_seconds",
    "call_with_retries",
    "classify",
    "parse_retry_after",
    "status_code_of",
]

T = TypeVar("T")
_log = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({408, 429})
_CONTEXT_MARKERS = (
    "context length",
    "context_length",
    "context window",
    "maximum context",
    "prompt is too long",
    "input is too long",
)
_TIMEOUT_NAMES = frozenset({"Timeout", "TimeoutError", "APITimeoutError", "ReadTimeout", "ConnectTimeout", "PoolTimeout", "WriteTimeout"})
_CONNECTION_NAMES = frozenset(
    {"APIConnectionError", "ConnectError", "ConnectionError", "RemoteProtocolError", "ReadError", "WriteError", "ServerDisconnectedError", "NetworkError"}
)
_NEVER_RETRY_NAMES = frozenset(
    {"ContextWindowExceededError", "BadRequestError", "AuthenticationError", "PermissionDeniedError", "NotFoundError", "UnsupportedParamsError", "ContentPolicyViolationError", "BudgetExceededError"}
)


@dataclass(frozen=True, kw_only=True)
class RetryDecision:
    """Whether to retry after an exception, and the least time to wait first."""

    retry: bool
    """True for transient failures (429, 5xx, timeouts, connection errors)."""
    wait_at_least: float | None = None
    """Seconds the server asked to wait (``Retry-After``); ``None`` if it did not say."""
    reason: str = ""
    """A short label for logs and error messages (``"http 429"``, ``"timeout"``...)."""
    status_code: int | None = None
    """The HTTP status of the failed attempt, when there was one."""


@dataclass(frozen=True, kw_only=True)
class RetryConfig:
    """How hard to try."""

    max_retries: int = 3
    """Retries after the first attempt; attempts per request are ``1 + max_retries``."""
    initial_backoff_s: float = 0.5
    """Backoff before the first retry, before jitter."""
    max_backoff_s: float = 30.0
    """Cap on the exponential backoff (a server's ``Retry-After`` may ask for more)."""
    jitter: float = 0.5
    """Fraction of the backoff drawn at random: the wait is uniform in
    ``[(1 - jitter) * b, b]``, spreading out clients that failed together."""
    max_retry_after_s: float = 300.0
    """A ``Retry-After`` longer than this is not waited for: the call fails at once
    (retryable), instead of blocking a run for hours."""

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.initial_backoff_s < 0 or self.max_backoff_s < self.initial_backoff_s:
            raise ValueError("need 0 <= initial_backoff_s <= max_backoff_s")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be in [0, 1]")
        if self.max_retry_after_s < 0:
            raise ValueError("max_retry_after_s must be >= 0")


def _headers_of(exc: BaseException) -> Mapping[str, str]:
    """Response headers carried by ``exc``, lower-cased keys; empty when none."""
    found: dict[str, str] = {}
    response = getattr(exc, "response", None)
    sources = [
        getattr(response, "headers", None),
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
    ]
    for source in sources:
        if source is None:
            continue
        try:
            items = list(source.items())
        except Exception:  # an exotic header object: ignore it, do not fail the classification
            continue
        for key, value in items:
            found.setdefault(str(key).lower(), str(value))
    return found


def status_code_of(exc: BaseException) -> int | None:
    """The HTTP status code an exception reports, from ``status_code`` or its response."""
    for candidate in (getattr(exc, "status_code", None), getattr(getattr(exc, "response", None), "status_code", None)):
        if isinstance(candidate, int) and 100 <= candidate <= 599:
            return candidate
    return None


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``retry-after`` (seconds or an HTTP date).

    Args:
        headers: Response headers, keys lower-cased.
        now: Current epoch time for HTTP dates (``time.time()`` when ``None``).

    Returns:
        Non-negative seconds, or ``None`` when no usable header is present.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            value = float(raw_ms) / 1000.0
            if math.isfinite(value):
                return max(0.0, value)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
        return max(0.0, value) if math.isfinite(value) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _mentions_context_length(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _CONTEXT_MARKERS)


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def classify(exc: BaseException) -> RetryDecision:
    """Decide whether ``exc`` is worth another attempt.

    Args:
        exc: The exception one attempt raised.

    Returns:
        The decision; ``wait_at_least`` is set from the response's retry headers.
    """
    status = status_code_of(exc)
    names = _class_names(exc)
    wait = parse_retry_after(_headers_of(exc))
    if "ContextWindowExceededError" in names:
        return RetryDecision(retry=False, reason="context length exceeded", status_code=status)
    if status is not None:
        if status in _RETRY_STATUS or status >= 500:
            return RetryDecision(retry=True, wait_at_least=wait, reason=f"http {status}", status_code=status)
        reason = "context length exceeded" if _mentions_context_length(exc) else f"http {status}"
        return RetryDecision(retry=False, reason=reason, status_code=status)
    if names & _NEVER_RETRY_NAMES:
        return RetryDecision(retry=False, reason=type(exc).__name__)
    if names & _TIMEOUT_NAMES or isinstance(exc, TimeoutError):
        return RetryDecision(retry=True, wait_at_least=wait, reason="timeout")
    if names & _CONNECTION_NAMES or isinstance(exc, ConnectionError):
        return RetryDecision(retry=True, wait_at_least=wait, reason="connection error")
    return RetryDecision(retry=False, reason=type(exc).__name__)


def backoff_seconds(retry_number: int, config: RetryConfig, rng: random.Random) -> float:
    """The jittered exponential backoff before retry number ``retry_number`` (1-based)."""
    base = min(config.max_backoff_s, config.initial_backoff_s * 2.0 ** max(0, retry_number - 1))
    return base * (1.0 - config.jitter * rng.random())


def _wait_for(state: tenacity.RetryCallState, config: RetryConfig, rng: random.Random) -> float:
    exc = state.outcome.exception() if state.outcome is not None else None
    decision = classify(exc) if exc is not None else RetryDecision(retry=False)
    wait = backoff_seconds(state.attempt_number, config, rng)
    if decision.wait_at_least is not None:
        # The server's figure is a floor: add a little jitter on top so the clients
        # it throttled together do not all return in the same millisecond.
        wait = max(wait, decision.wait_at_least * (1.0 + 0.1 * rng.random()))
    return wait


def _should_retry(state: tenacity.RetryCallState, config: RetryConfig) -> bool:
    if state.outcome is None or not state.outcome.failed:
        return False
    exc = state.outcome.exception()
    if exc is None:
        return False
    decision = classify(exc)
    if not decision.retry:
        return False
    return decision.wait_at_least is None or decision.wait_at_least <= config.max_retry_after_s


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    config: RetryConfig,
    rng: random.Random,
    on_retry: Callable[[int, RetryDecision, float], Any] | None = None,
) -> T:
    """Await ``attempt()`` until it succeeds, fails for good, or attempts run out.

    Args:
        attempt: Makes one attempt (one HTTP request).
        config: Retry limits and backoff.
        rng: Source of jitter (pass a seeded one for reproducible waits).
        on_retry: Called as ``on_retry(attempt_number, decision, wait_s)`` before each sleep.

    Returns:
        The first successful result.

    Raises:
        BaseException: The last attempt's exception, unchanged (the caller scrubs
            and wraps it).
    """

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is None or state.outcome is None:
            return
        exc = state.outcome.exception()
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        if exc is not None:
            on_retry(state.attempt_number, classify(exc), wait)

    async def one_attempt() -> T:
        # A coroutine function, so tenacity awaits it (a lambda returning a
        # coroutine would be taken for a synchronous callable).
        return await attempt()

    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(1 + config.max_retries),
        wait=lambda state: _wait_for(state, config, rng),
        retry=lambda state: _should_retry(state, config),
        before_sleep=before_sleep,
        reraise=True,
    )
    return await retrying(one_attempt)
