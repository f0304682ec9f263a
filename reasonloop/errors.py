"""One exception hierarchy for reasonloop.

Exceptions are for misuse (bad configuration, programmer errors, corrupt files).
Outcomes of running untrusted input (a tool that failed, a planner that found no
plan, a model that wrote malformed JSON) are values with a status, never exceptions.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "PolicyError",
    "ReasonloopError",
    "StoreError",
    "ToolDefinitionError",
    "UnknownNameError",
]


class ReasonloopError(Exception):
    """Base class of every exception the package raises on purpose."""


class ConfigError(ReasonloopError, ValueError):
    """A configuration value is invalid; the message names the key."""


class UnknownNameError(ReasonloopError, KeyError):
    """A name was looked up in a registry that does not hold it.

    The message lists the valid names, so the user can fix the typo.
    """

    def __init__(self, kind: str, name: str, valid: list[str] | tuple[str, ...]) -> None:
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(self.valid) or '(none)'}")

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0])


class ToolDefinitionError(ReasonloopError, TypeError):
    """A function cannot be turned into a tool (missing annotations, bad name...)."""


class PolicyError(ReasonloopError):
    """A policy call failed in a way the agent cannot turn into an observation.

    Raised for non-retryable API errors (400, 401, context length) after the
    message has been scrubbed of secrets, and for misconfigured local models.
    """

    def __init__(self, message: str, *, status_code: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retryable = retryable


class StoreError(ReasonloopError):
    """The run store cannot be opened or a stored row cannot be decoded."""
