"""Handles on running episodes, and the task descriptions the runtime accepts."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reasonloop.agents.state import AgentContext, ReactState
from reasonloop.errors import ConfigError
from reasonloop.trajectory.schema import Trajectory

__all__ = ["AgentTask", "Episode", "branch_seed", "sample_seed"]


@dataclass(kw_only=True)
class AgentTask:
    """One task for :meth:`AgentRuntime.run_many`."""

    task_id: str
    """Stable id of the task (part of the store key)."""
    prompt: str | list[dict[str, Any]]
    """A user prompt, or the initial chat messages."""
    seed: int | None = None
    """Base seed; sample ``s`` runs with ``seed + s`` (``None``: unseeded)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Copied into each trajectory's metadata."""

    def __post_init__(self) -> None:
        if not self.task_id:
            raise ConfigError("task_id must be a non-empty string")
        if isinstance(self.prompt, str) and not self.prompt.strip():
            raise ConfigError(f"task {self.task_id}: empty prompt")

    @classmethod
    def coerce(cls, task: AgentTask | Mapping[str, Any]) -> AgentTask:
        """Accept an :class:`AgentTask` or a mapping with the same keys."""
        return task if isinstance(task, AgentTask) else cls(**dict(task))


def sample_seed(seed: int | None, sample: int) -> int | None:
    """The seed of sample ``sample`` of a task with base seed ``seed``."""
    return None if seed is None else seed + sample


def branch_seed(parent_seed: int | None, branch: int) -> int:
    """Seed of the ``branch``-th fork (1-based) of an episode.

    Always an int, and never the parent's: a branch must sample differently and
    must not share the parent's store key ``(run, task, sample, seed)``.
    """
    return ((parent_seed or 0) * 1_000_003 + branch) % (2**31)


@dataclass(kw_only=True, eq=False)
class Episode:
    """A running episode: its graph thread, its tool session, its latest state.

    Made by :meth:`AgentRuntime.start` or :meth:`AgentRuntime.fork`; moved on with
    :meth:`AgentRuntime.advance` and ended with :meth:`AgentRuntime.finish`.
    """

    id: str
    """Id of the trajectory this episode records (also its LangGraph thread id)."""
    task_id: str
    sample: int
    seed: int | None
    metadata: dict[str, Any]
    messages: list[dict[str, Any]]
    """The initial chat messages."""
    prompt_token_ids: list[int]
    context: AgentContext
    """Runtime context: the tool session and the seed (not checkpointed)."""
    state: ReactState
    """Graph state after the last advance (a plain JSON dict)."""
    next: tuple[str, ...] = ("policy",)
    """Nodes the graph runs next; empty when the episode has ended."""
    submitted: bool = False
    """Whether the state has been written to the graph's thread yet."""
    parent_id: str | None = None
    fork_step: int | None = None
    branches: int = 0
    """How many times this episode has been forked."""
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    trajectory: Trajectory | None = None
    """Set by :meth:`AgentRuntime.finish`."""

    @property
    def thread_id(self) -> str:
        return self.id

    @property
    def done(self) -> bool:
        """True once the graph has reached its end (or failed)."""
        return self.error is not None or not self.next or self.state.get("status", "running") != "running"

    @property
    def num_steps(self) -> int:
        return len(self.state.get("steps", []))

    def snapshot_state(self) -> ReactState:
        """A deep copy of the state, for a branch."""
        return copy.deepcopy(self.state)
