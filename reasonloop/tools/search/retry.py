"""One retry policy for remote search back ends (tenacity).

Only transient failures are retried: HTTP 429, 5xx and timeouts. A 4xx, a refused
connection or a malformed answer fails at once, so a dead server costs one attempt,
not a backoff schedule. ``Retry-After`` (seconds) is honoured up to ``max_wait_s``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from reasonloop.errors import ConfigError

__all__ = ["RetryConfig", "TransientError", "call_with_retries", "is_retryable_status"]

T = TypeVar("T")


@dataclass(kw_only=True, frozen=True)
class RetryConfig:
    """How often and how patiently a remote call is retried."""

    attempts: int = 3
    """Total attempts, the first one included (1 disables retries)."""
    initial_wait_s: float = 0.5
    """Wait before the second attempt; doubles each time."""
    max_wait_s: float = 8.0
    """Cap on any single wait, ``Retry-After`` included."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError("RetryConfig.attempts must be >= 1")
        if self.initial_wait_s < 0 or self.max_wait_s < 0:
            raise ConfigError("RetryConfig waits must be >= 0")


class TransientError(Exception):
    """A failure worth retrying; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def is_retryable_status(status_code: int) -> bool:
    """429 and every 5xx are transient; other statuses are final."""
    return status_code == 429 or 500 <= status_code <= 599


def _wait(config: RetryConfig) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        hint = getattr(exc, "retry_after", None)
        if isinstance(hint, int | float) and hint >= 0:
            return min(float(hint), config.max_wait_s)
        return min(config.initial_wait_s * 2 ** (state.attempt_number - 1), config.max_wait_s)

    return wait


def call_with_retries(fn: Callable[[], T], config: RetryConfig) -> T:
    """Run ``fn``; retry it while it raises :class:`TransientError`.

    The last :class:`TransientError` is re-raised when the attempts run out;
    any other exception propagates at once.
    """
    retrying = Retrying(
        stop=stop_after_attempt(config.attempts),
        wait=_wait(config),
        retry=retry_if_exception(lambda e: isinstance(e, TransientError)),
        reraise=True,
    )
    return retrying(fn)
