"""The trajectory data model: what every run records, losslessly.

A trajectory is one episode of one agent on one task. Its token stream is

    prompt_token_ids + steps[0].token_ids + steps[1].token_ids + ...

where a policy step's ids were *sampled* (loss mask 1) and every other step's ids
were *forced* by the environment (tool results, chat-template glue, memory
inserts; loss mask 0). API policies that do not expose token ids leave them empty;
the text fields are always filled.

Every model here is pydantic v2 and versioned by ``SCHEMA_VERSION``; floats
round-trip exactly (``inf``/``nan`` are written as JSON constants, not nulls).
"""

from __future__ import annotations

import time
import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "SCHEMA_VERSION",
    "EntropyKind",
    "MemoryStep",
    "NoteStep",
    "PolicyStep",
    "Reward",
    "Step",
    "ToolCall",
    "ToolResult",
    "ToolStatus",
    "ToolStep",
    "Trajectory",
    "TrajectoryStatus",
    "Usage",
    "new_id",
]

SCHEMA_VERSION = 1

EntropyKind = Literal["exact", "topk", "none"]
"""How ``PolicyStep.entropies`` were obtained: full-vocabulary (``exact``), from the
top-k log-probs an API returned (``topk``, a lower bound), or not at all."""


def new_id() -> str:
    """A fresh random identifier (32 hex characters)."""
    return uuid.uuid4().hex


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        ser_json_inf_nan="constants",
        validate_assignment=False,
    )


class Usage(_Model):
    """Token counts and cost of one policy call (or a sum of calls)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = None

    def __add__(self, other: Usage) -> Usage:
        cost = None
        if self.cost_usd is not None or other.cost_usd is not None:
            cost = (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cost_usd=cost,
        )


class ToolCall(_Model):
    """A tool call the policy emitted.

    ``arguments`` is the decoded JSON object; ``raw`` keeps the text the model
    actually wrote (so a malformed call can be shown back to it).
    """

    id: str = Field(default_factory=lambda: "call_" + uuid.uuid4().hex[:12])
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    raw: str | None = None


class ToolStatus(StrEnum):
    """Outcome of one tool call."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    INVALID_ARGUMENTS = "invalid_arguments"


class ToolResult(_Model):
    """What a tool call produced.

    ``output`` is what the tool returned for the model to read; ``error`` explains a
    non-ok status in words the model can act on. ``data`` carries structured
    results (JSON-safe) for verifiers and tests.
    """

    status: ToolStatus
    output: str = ""
    error: str | None = None
    duration_s: float = 0.0
    truncated: bool = False
    data: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status is ToolStatus.OK

    def to_observation(self) -> str:
        """The text the model sees for this result."""
        if self.status is ToolStatus.OK:
            return self.output
        parts = [f"[{self.status.value}]"]
        if self.error:
            parts.append(self.error)
        if self.output:
            parts.append(self.output)
        return " ".join(parts) if len(parts) > 1 else parts[0]


class _StepBase(_Model):
    node: str = ""
    """Name of the graph node that produced this step."""
    started_at: float = Field(default_factory=time.time)
    duration_s: float = 0.0
    token_ids: list[int] = Field(default_factory=list)
    """Token ids this step appended to the model context (empty for API policies)."""


class PolicyStep(_StepBase):
    """One call of the policy: what it sampled, exactly."""

    kind: Literal["policy"] = "policy"
    text: str = ""
    logprobs: list[float] | None = None
    """Per sampled token, aligned with ``token_ids`` (or with the provider's tokens)."""
    entropies: list[float] | None = None
    entropy_kind: EntropyKind = "none"
    top_k: int | None = None
    """k of the top-k approximation when ``entropy_kind == "topk"``."""
    finish_reason: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    parse_errors: list[str] = Field(default_factory=list)
    """Tool calls the model tried to write but that could not be decoded."""
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    sampling: dict[str, Any] = Field(default_factory=dict)
    cached: bool = False

    @model_validator(mode="after")
    def _aligned(self) -> PolicyStep:
        n = len(self.token_ids)
        if n:
            for name in ("logprobs", "entropies"):
                values = getattr(self, name)
                if values is not None and len(values) != n:
                    raise ValueError(f"{name} has {len(values)} values for {n} token ids")
        return self


class ToolStep(_StepBase):
    """One tool call and its result; its ``token_ids`` are forced (loss mask 0)."""

    kind: Literal["tool"] = "tool"
    call: ToolCall
    result: ToolResult


class MemoryStep(_StepBase):
    """A read or write of long-term memory during the episode."""

    kind: Literal["memory"] = "memory"
    op: Literal["read", "search", "write", "delete"]
    namespace: list[str] = Field(default_factory=list)
    key: str | None = None
    query: str | None = None
    items: list[dict[str, Any]] = Field(default_factory=list)


class NoteStep(_StepBase):
    """Anything else: an observation the environment showed the model (``role``
    set, ``token_ids`` forced), or an annotation nobody showed it (``role`` None)."""

    kind: Literal["note"] = "note"
    text: str = ""
    role: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


Step = Annotated[PolicyStep | ToolStep | MemoryStep | NoteStep, Field(discriminator="kind")]


class Reward(_Model):
    """One reward component: ``source`` says what computed it (a verifier, a rule)."""

    name: str
    value: float
    source: str = ""
    explanation: str | None = None


TrajectoryStatus = Literal["running", "finished", "truncated", "error"]


class Trajectory(_Model):
    """One episode, recorded losslessly."""

    schema_version: int = SCHEMA_VERSION
    id: str = Field(default_factory=new_id)
    run_id: str = "default"
    task_id: str = ""
    sample: int = 0
    seed: int | None = None
    parent_id: str | None = None
    """For a branch: the trajectory it was forked from."""
    fork_step: int | None = None
    """For a branch: number of the parent's steps shared with it (the fork point)."""
    agent: str = ""
    model: str = ""
    messages: list[dict[str, Any]] = Field(default_factory=list)
    """The initial chat messages (system, user...) the episode started from."""
    tools: list[dict[str, Any]] = Field(default_factory=list)
    """JSON schemas of the tools the policy was offered."""
    prompt_token_ids: list[int] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    final_answer: str | None = None
    status: TrajectoryStatus = "running"
    error: str | None = None
    rewards: list[Reward] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: float = Field(default_factory=time.time)
    finished_at: float | None = None

    @model_validator(mode="after")
    def _branch_links(self) -> Trajectory:
        if (self.parent_id is None) != (self.fork_step is None):
            raise ValueError("parent_id and fork_step must be set together")
        if self.fork_step is not None and self.fork_step < 0:
            raise ValueError("fork_step must be >= 0")
        return self

    # -- derived views -------------------------------------------------------------

    @property
    def key(self) -> tuple[str, str, int, int | None]:
        """The idempotent store key (run, task, sample, seed)."""
        return (self.run_id, self.task_id, self.sample, self.seed)

    @property
    def reward(self) -> float:
        """Sum of the reward components (0.0 when none)."""
        return float(sum(r.value for r in self.rewards))

    @property
    def usage(self) -> Usage:
        total = Usage()
        for step in self.steps:
            if isinstance(step, PolicyStep):
                total = total + step.usage
        return total

    def policy_steps(self) -> list[PolicyStep]:
        return [s for s in self.steps if isinstance(s, PolicyStep)]

    def tool_steps(self) -> list[ToolStep]:
        return [s for s in self.steps if isinstance(s, ToolStep)]

    def token_ids(self) -> list[int]:
        """The whole context as the model saw it, prompt included."""
        out = list(self.prompt_token_ids)
        for step in self.steps:
            out.extend(step.token_ids)
        return out

    def loss_mask(self) -> list[int]:
        """1 for sampled tokens, 0 for prompt and forced tokens; aligned with ``token_ids()``."""
        out = [0] * len(self.prompt_token_ids)
        for step in self.steps:
            out.extend([1 if isinstance(step, PolicyStep) else 0] * len(step.token_ids))
        return out

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> Trajectory:
        return cls.model_validate_json(text)
