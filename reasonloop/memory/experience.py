"""The experience library: lessons distilled from trajectories, credited by outcomes.

After an episode, :func:`distill` reads its tool steps and writes lessons:

* ``failure``: a tool call failed, and why (the tool's own error message), with the
  arguments that failed; if a later call of the same tool worked in the same
  episode, the lesson says with which arguments (``fix``).
* ``success``: in an episode that succeeded, the arguments a tool worked with.

Lessons with the same tool and the same error *shape* (quoted values and numbers
blanked out) are one lesson: a new trajectory adds itself to its ``provenance``.

Before an episode the agent recalls lessons for its task (hybrid search within
the task family's namespace). When the episode ends, :meth:`ExperienceLibrary.learn`
credits every lesson that was recalled (the trajectory's memory steps say which)
with the outcome: ``usefulness = (successes + 1) / (successes + failures + 2)``.
The TTL of a lesson scales with its usefulness, and recall refreshes it, so lessons
nobody recalls expire, and :meth:`ExperienceLibrary.prune` evicts lessons that were
tried enough and keep preceding failures.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from reasonloop.errors import ConfigError
from reasonloop.memory.kinds import Scope
from reasonloop.memory.store import Hit, MemoryStore
from reasonloop.trajectory.schema import MemoryStep, Step, ToolStep

__all__ = ["ExperienceLibrary", "LearnReport", "Lesson", "LibraryConfig", "distill", "error_shape", "usefulness"]

_STEPS: TypeAdapter[list[Step]] = TypeAdapter(list[Step])
_SHAPE = re.compile(r"'[^']*'|\"[^\"]*\"|\d+(?:\.\d+)?")


def usefulness(successes: int, failures: int) -> float:
    """Laplace estimate of P(success | lesson recalled): 0.5 with no evidence."""
    return (successes + 1) / (successes + failures + 2)


def error_shape(error: str) -> str:
    """An error message with its quoted values and numbers blanked (``_``)."""
    return _SHAPE.sub("_", " ".join(error.split()))[:300]


class Lesson(BaseModel):
    """One lesson, as stored (the value of a ``lessons`` item)."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["failure", "success"]
    tool: str
    text: str
    """The lesson, in words a policy reads."""
    task: str = ""
    """The task it was learnt on (indexed with the text, so similar tasks recall it)."""
    error: str | None = None
    provenance: list[str] = Field(default_factory=list)
    """Trajectory ids the lesson was distilled from."""
    successes: int = 0
    failures: int = 0
    recalls: int = 0
    usefulness: float = 0.5

    @property
    def key(self) -> str:
        basis = f"{self.kind}|{self.tool}|" + (error_shape(self.error) if self.error else _args_shape(self.text))
        return "lesson-" + hashlib.sha256(basis.encode()).hexdigest()[:16]


def _args(call_args: dict[str, Any]) -> str:
    return json.dumps(call_args, ensure_ascii=False, sort_keys=True)[:300]


def _args_shape(text: str) -> str:
    return re.sub(r"[A-Za-z]+", "a", re.sub(r"\d+", "9", text))[:300]


def distill(task: str, steps: Sequence[Step], *, trajectory_id: str, success: bool | None) -> list[Lesson]:
    """Lessons one episode teaches (see the module docstring)."""
    tool_steps = [s for s in steps if isinstance(s, ToolStep)]
    lessons: list[Lesson] = []
    for i, step in enumerate(tool_steps):
        name, args = step.call.name, step.call.arguments
        if not step.result.ok:
            error = step.result.error or step.result.to_observation()
            later = next((s for s in tool_steps[i + 1 :] if s.call.name == name and s.result.ok), None)
            text = f"Calling {name} with {_args(args)} failed: {error}"
            if later is not None:
                text += f" It worked when called with {_args(later.call.arguments)}."
            lessons.append(Lesson(kind="failure", tool=name, text=text, task=task[:300], error=error,
                                  provenance=[trajectory_id]))
        elif success:
            text = f"{name} worked when called with {_args(args)}."
            lessons.append(Lesson(kind="success", tool=name, text=text, task=task[:300], provenance=[trajectory_id]))
    unique: dict[str, Lesson] = {}
    for lesson in lessons:
        unique.setdefault(lesson.key, lesson)
    return list(unique.values())


@dataclass(frozen=True, kw_only=True)
class LibraryConfig:
    """How lessons are kept and forgotten."""

    ttl_minutes: float | None = 30 * 24 * 60.0
    """TTL of a lesson with neutral usefulness (0.5); it scales with usefulness / 0.5.
    ``None``: lessons never expire (pruning still evicts useless ones)."""
    success_lessons: bool = True
    """Also keep 'what worked' lessons from successful episodes."""
    prune_min_trials: int = 3
    """Recalls with a known outcome a lesson needs before it can be pruned."""
    prune_below: float = 0.3
    """Usefulness at or below which a tried lesson is evicted."""

    def __post_init__(self) -> None:
        if self.ttl_minutes is not None and self.ttl_minutes <= 0:
            raise ConfigError("LibraryConfig.ttl_minutes must be > 0 or None")
        if self.prune_min_trials < 1:
            raise ConfigError("LibraryConfig.prune_min_trials must be >= 1")
        if not 0 <= self.prune_below < 1:
            raise ConfigError("LibraryConfig.prune_below must be in [0, 1)")


@dataclass(kw_only=True)
class LearnReport:
    """What :meth:`ExperienceLibrary.learn` changed."""

    added: list[str] = field(default_factory=list)
    """Keys of new lessons."""
    merged: list[str] = field(default_factory=list)
    """Keys of existing lessons this trajectory was added to."""
    credited: list[str] = field(default_factory=list)
    """Keys of recalled lessons whose counters were updated."""


class ExperienceLibrary:
    """Lessons of one scope (user, agent, task family)."""

    def __init__(self, store: MemoryStore, scope: Scope, config: LibraryConfig | None = None) -> None:
        self.store = store
        self.scope = scope
        self.config = config or LibraryConfig()
        self.namespace = scope.namespace("lessons")

    def _ttl(self, use: float) -> float | None:
        base = self.config.ttl_minutes
        return None if base is None else base * max(0.05, use / 0.5)

    def add(self, lesson: Lesson, *, actor: str = "") -> bool:
        """Insert ``lesson`` or merge its provenance into the same lesson; True if new."""
        created = False

        def merge(old: dict[str, Any] | None) -> dict[str, Any]:
            nonlocal created
            if old is None:
                created = True
                return lesson.model_dump(mode="json")
            current = Lesson.model_validate(old)
            current.provenance.extend(p for p in lesson.provenance if p not in current.provenance)
            return current.model_dump(mode="json")

        existing = self.store.get(self.namespace, lesson.key, refresh_ttl=False)
        use = float(existing.value.get("usefulness", 0.5)) if existing is not None else lesson.usefulness
        self.store.update(self.namespace, lesson.key, merge, ttl=self._ttl(use), actor=actor)  # TTL it earned
        return created

    def recall(self, task: str, *, limit: int = 3) -> list[Hit]:
        """Lessons for a task like ``task``, best first (recall refreshes their TTL)."""
        return self.store.recall(self.namespace, task, limit=limit)

    def credit(self, keys: Sequence[str], *, success: bool, actor: str = "") -> list[str]:
        """Count one outcome for each recalled lesson; returns the keys that still exist."""
        done = []
        for key in dict.fromkeys(keys):
            def bump(old: dict[str, Any] | None) -> dict[str, Any] | None:
                if old is None:
                    return None
                lesson = Lesson.model_validate(old)
                lesson.recalls += 1
                lesson.successes += int(success)
                lesson.failures += int(not success)
                lesson.usefulness = usefulness(lesson.successes, lesson.failures)
                return lesson.model_dump(mode="json")

            before = self.store.get(self.namespace, key, refresh_ttl=False)
            if before is None:
                continue
            prior = Lesson.model_validate(before.value)
            ttl = self._ttl(usefulness(prior.successes + int(success), prior.failures + int(not success)))
            if self.store.update(self.namespace, key, bump, ttl=ttl, actor=actor, op="credit") is not None:
                done.append(key)
        return done

    def learn(self, task: str, steps: Sequence[Step] | Sequence[dict[str, Any]], *, trajectory_id: str,
              success: bool | None) -> LearnReport:
        """Credit the lessons this episode recalled, then add the lessons it teaches.

        Args:
            task: The task prompt.
            steps: The episode's steps (models, or their JSON dumps from graph state).
            trajectory_id: Provenance of new lessons; the history's actor.
            success: The outcome (``None``: unknown, nothing is credited).
        """
        parsed = _STEPS.validate_python([s if isinstance(s, dict) else s.model_dump(mode="json") for s in steps])
        report = LearnReport()
        if success is not None:
            recalled = [
                item["key"] for s in parsed if isinstance(s, MemoryStep) and s.op == "search"
                for item in s.items if list(item.get("namespace", []))[:1] == ["lessons"]
                and tuple(item["namespace"]) == self.namespace
            ]
            report.credited = self.credit(recalled, success=success, actor=trajectory_id)
        for lesson in distill(task, parsed, trajectory_id=trajectory_id, success=success):
            if lesson.kind == "success" and not self.config.success_lessons:
                continue
            (report.added if self.add(lesson, actor=trajectory_id) else report.merged).append(lesson.key)
        return report

    def lessons(self, *, limit: int = 1000) -> list[Lesson]:
        """Every live lesson of this scope, newest first."""
        return [Lesson.model_validate(i.value) for i in self.store.listing(self.namespace, limit=limit)]

    def prune(self) -> list[str]:
        """Evict lessons tried at least ``prune_min_trials`` times whose usefulness is at
        or below ``prune_below``; returns their keys."""
        out = []
        for item in self.store.listing(self.namespace, limit=1_000_000):
            lesson = Lesson.model_validate(item.value)
            tried = lesson.successes + lesson.failures
            if tried >= self.config.prune_min_trials and lesson.usefulness <= self.config.prune_below:
                self.store.evict(self.namespace, item.key, reason="evict", actor="prune")
                out.append(item.key)
        return out
