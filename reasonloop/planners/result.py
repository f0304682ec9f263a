"""Values that planner calls return: statuses, timings, PDDL issues, validation reports.

These are the only things that cross the process boundary between the caller and the
isolated planner process (as JSON), so they are versioned pydantic models.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "PddlIssue",
    "PlanResult",
    "PlanStatus",
    "Timings",
    "ValidationReport",
    "ValidationStatus",
]

SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanStatus(StrEnum):
    """Outcome of one planner call."""

    SOLVED_OPTIMALLY = "solved_optimally"
    SOLVED_SATISFICING = "solved_satisficing"
    UNSOLVABLE = "unsolvable"
    TIMEOUT = "timeout"
    MEMORY_OUT = "memory_out"
    INVALID_INPUT = "invalid_input"
    ENGINE_ERROR = "engine_error"

    @property
    def solved(self) -> bool:
        return self in (PlanStatus.SOLVED_OPTIMALLY, PlanStatus.SOLVED_SATISFICING)

    @property
    def definitive(self) -> bool:
        """True when another engine cannot give a better answer on the same input."""
        return self.solved or self in (PlanStatus.UNSOLVABLE, PlanStatus.INVALID_INPUT)


class PddlIssue(_Model):
    """One problem found in PDDL text, located where the author can fix it."""

    file: Literal["domain", "problem", "plan"]
    """Which input holds the problem."""
    line: int | None = None
    """1-based line number, when known."""
    symbol: str | None = None
    """The offending name (predicate, object, type, action...), when there is one."""
    message: str
    """What is wrong and how to fix it, in words a model can act on."""

    def describe(self) -> str:
        where = self.file + (f" line {self.line}" if self.line is not None else "")
        return f"{where}: {self.message}"


class Timings(_Model):
    """Wall-clock seconds spent in each phase (0 when the phase did not run)."""

    parse_s: float = 0.0
    solve_s: float = 0.0
    total_s: float = 0.0


class PlanResult(_Model):
    """What a planner call produced."""

    schema_version: int = SCHEMA_VERSION
    status: PlanStatus
    plan: list[str] = Field(default_factory=list)
    """Actions in PDDL syntax, e.g. ``"(pick-up a)"``; empty unless solved."""
    engine: str = ""
    """Our name of the engine that answered (``fast-downward``, ``pyperplan``...)."""
    timings: Timings = Field(default_factory=Timings)
    message: str = ""
    """Explanation of a non-solved status, or notes on the solution."""
    issues: list[PddlIssue] = Field(default_factory=list)
    """Located input problems (only for ``INVALID_INPUT``)."""

    @property
    def solved(self) -> bool:
        return self.status.solved

    def summary(self) -> str:
        """A short text for a model to read."""
        if self.solved:
            steps = "\n".join(f"{i}. {a}" for i, a in enumerate(self.plan, 1)) or "(empty plan: the goal already holds)"
            return f"{self.status.value} by {self.engine} in {self.timings.total_s:.2f} s, {len(self.plan)} steps:\n{steps}"
        if self.issues:  # the message repeats the issues; list them one per line instead
            return "\n".join([f"{self.status.value}:"] + [f"- {issue.describe()}" for issue in self.issues])
        return f"{self.status.value}: {self.message}".rstrip(": ")


class ValidationStatus(StrEnum):
    """Outcome of checking a plan."""

    VALID = "valid"
    INVALID_PLAN = "invalid_plan"
    """The plan parsed but fails: an inapplicable step or unmet goals."""
    INVALID_INPUT = "invalid_input"
    """Domain, problem or plan text could not be read."""
    TIMEOUT = "timeout"
    MEMORY_OUT = "memory_out"
    ENGINE_ERROR = "engine_error"


class ValidationReport(_Model):
    """A plan check with an explanation of the first failure."""

    schema_version: int = SCHEMA_VERSION
    status: ValidationStatus
    plan: list[str] = Field(default_factory=list)
    """The plan as read, normalised to PDDL syntax."""
    failed_step: int | None = None
    """1-based index of the first inapplicable action."""
    failed_action: str | None = None
    unsatisfied_preconditions: list[str] = Field(default_factory=list)
    """Preconditions of the failed action that are false in the state before it."""
    state: list[str] = Field(default_factory=list)
    """True atoms of the state in which the plan failed (before the failed step, or at the end)."""
    unmet_goals: list[str] = Field(default_factory=list)
    """Goal conditions false after the last step (when every step was applicable)."""
    message: str = ""
    """The explanation, ready for a model to read."""
    issues: list[PddlIssue] = Field(default_factory=list)
    timings: Timings = Field(default_factory=Timings)

    @property
    def valid(self) -> bool:
        return self.status is ValidationStatus.VALID
