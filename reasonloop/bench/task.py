"""Tasks and verifiers: what an agent is asked, and how its answer is scored.

A verifier turns an answer (and optionally the trajectory) into a :class:`Verdict`
with a score and an explanation. The same verdict is the RL reward.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reasonloop.registry import Registry
from reasonloop.trajectory.schema import Reward, Trajectory

__all__ = ["VERIFIERS", "ExpertTurn", "Task", "Verdict", "exact_match", "numeric_match"]


class Verdict(BaseModel):
    """The score of one answer, with the reason."""

    model_config = ConfigDict(frozen=True)

    score: float
    correct: bool
    explanation: str

    def as_reward(self, source: str) -> Reward:
        return Reward(name="correct", value=self.score, source=source, explanation=self.explanation)


Verifier = Callable[["Task", str | None, Trajectory | None], Verdict]
VERIFIERS: Registry[Verifier] = Registry("verifier")


class ExpertTurn(BaseModel):
    """One assistant turn of a scripted expert: text, then tool calls (name, arguments)."""

    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = Field(default_factory=list)


class Task(BaseModel):
    """One task: a prompt, the tools it allows, a reference answer and a verifier."""

    id: str
    suite: str
    prompt: str
    answer: str
    tools: list[str] = Field(default_factory=list)
    verifier: str = "exact"
    expert: list[ExpertTurn] = Field(default_factory=list)
    """A correct tool-using solution, turn by turn (empty when the suite has none)."""
    metadata: dict[str, Any] = Field(default_factory=dict)

    def verify(self, answer: str | None, trajectory: Trajectory | None = None) -> Verdict:
        return VERIFIERS.get(self.verifier)(self, answer, trajectory)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower().rstrip("."))


@VERIFIERS.decorator("exact")
def exact_match(task: Task, answer: str | None, trajectory: Trajectory | None = None) -> Verdict:
    """Case- and whitespace-insensitive string equality."""
    if answer is None or not answer.strip():
        return Verdict(score=0.0, correct=False, explanation="no answer")
    ok = _normalise(answer) == _normalise(task.answer)
    why = "matches the reference" if ok else f"expected {task.answer!r}, got {answer.strip()[:80]!r}"
    return Verdict(score=float(ok), correct=ok, explanation=why)


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")


def _as_fraction(text: str) -> Fraction | None:
    found = _NUMBER.findall(text.replace(" ", ""))
    if not found:
        return None
    try:
        return Fraction(found[-1].replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


@VERIFIERS.decorator("numeric")
def numeric_match(task: Task, answer: str | None, trajectory: Trajectory | None = None) -> Verdict:
    """The last number in the answer equals the reference exactly (``1,234`` and ``1234.0`` accepted)."""
    if answer is None or not answer.strip():
        return Verdict(score=0.0, correct=False, explanation="no answer")
    got, want = _as_fraction(answer), _as_fraction(task.answer)
    if got is None:
        return Verdict(score=0.0, correct=False, explanation=f"no number in the answer {answer.strip()[:80]!r}")
    ok = want is not None and got == want
    why = "equals the reference" if ok else f"expected {task.answer}, got {answer.strip()[:80]}"
    return Verdict(score=float(ok), correct=ok, explanation=why)
