"""What a ReAct episode keeps between nodes, and what it gets from outside.

The graph state (:class:`ReactState`) holds only plain JSON values, so any LangGraph
checkpointer (in memory, SQLite) can store it and a fork is a copy of it. Things
that belong to one episode but cannot be checkpointed (the open tool sessions, the
episode id, the sampling seed) travel in LangGraph's runtime context
(:class:`AgentContext`, passed as ``context=`` to ``ainvoke``/``astream``).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

from reasonloop.errors import ConfigError
from reasonloop.tools.base import ToolsetSession

__all__ = [
    "AgentContext",
    "AgentLimits",
    "EpisodeStatus",
    "ReactState",
    "initial_state",
]

EpisodeStatus = Literal["running", "finished", "truncated", "error"]


class ReactState(TypedDict, total=False):
    """Graph state of a ReAct episode (every value is JSON).

    ``steps`` has an append reducer: a node returns only the steps it produced.
    Every other key is overwritten by the node that returns it.
    """

    messages: list[dict[str, Any]]
    """The whole conversation, initial messages first (OpenAI chat format)."""
    token_ids: list[int] | None
    """Token ids of ``messages`` as the policy sees them; ``None`` for API policies."""
    steps: Annotated[list[dict[str, Any]], operator.add]
    """Recorded steps, each ``Step.model_dump(mode="json")``."""
    policy_steps: int
    """Policy calls made so far."""
    tool_calls: int
    """Tool calls executed so far (including failed ones)."""
    feedback: int
    """Observations shown to the model that were not tool results (parse errors,
    cut or empty turns, failed policy calls)."""
    errors: int
    """Consecutive policy calls that failed (reset by a successful call)."""
    final_answer: str | None
    status: EpisodeStatus
    reason: str | None
    """Why a non-finished episode stopped (``None`` while running or finished)."""


@dataclass(frozen=True, kw_only=True)
class AgentLimits:
    """Budgets of one episode; reaching one ends it with status ``truncated``."""

    max_steps: int = 16
    """Most policy calls per episode."""
    max_tool_calls: int = 32
    """Most tool calls per episode, counted over all turns."""
    max_errors: int = 3
    """Most consecutive failed policy calls before the episode ends with status ``error``."""

    def __post_init__(self) -> None:
        for name in ("max_steps", "max_tool_calls", "max_errors"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def recursion_limit(self) -> int:
        """LangGraph super-steps an episode may take: a policy and a tools node per
        policy call, plus slack for the start and a final node."""
        return 2 * self.max_steps + 3


@dataclass(kw_only=True, eq=False)
class AgentContext:
    """Per-episode dependencies, handed to the graph as LangGraph runtime context.

    Not part of the checkpointed state: a fork gets its own context with a forked
    tool session.
    """

    session: ToolsetSession
    """The episode's tools (with their per-episode state)."""
    episode_id: str = ""
    """Id of the trajectory being recorded; tagged on streamed events."""
    seed: int | None = None
    """Base sampling seed; policy call ``k`` samples with a seed derived from it."""


def initial_state(messages: list[dict[str, Any]], token_ids: list[int] | None) -> ReactState:
    """The state an episode starts from, before its first policy call."""
    return {
        "messages": messages,
        "token_ids": token_ids,
        "steps": [],
        "policy_steps": 0,
        "tool_calls": 0,
        "feedback": 0,
        "errors": 0,
        "final_answer": None,
        "status": "running",
        "reason": None,
    }
