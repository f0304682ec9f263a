"""Memory kinds: small layers over the store, one namespace root each.

Every kind lives under ``(kind, user, agent, family)`` (:class:`Scope`), so two users,
two agents or two task families never see each other's memories unless a caller
searches a shorter prefix on purpose.

* ``notes`` (:data:`~reasonloop.memory.view.WORKING_KIND`): working notes of one
  episode, kept in its :class:`~reasonloop.memory.view.MemoryView` and dropped when
  it ends (:func:`note_key` names them).
* ``episodes`` (:class:`EpisodicMemory`): one summary per finished episode: the
  task, the outcome, the tools it used and what failed.
* ``facts`` (:class:`SemanticMemory`): statements worth keeping, deduplicated by
  their normalised text.
* ``lessons``: the experience library (:mod:`reasonloop.memory.experience`).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reasonloop.errors import ConfigError
from reasonloop.memory.store import Hit, MemoryStore
from reasonloop.trajectory.schema import Trajectory

__all__ = ["KINDS", "EpisodicMemory", "Scope", "SemanticMemory", "episode_summary", "fact_key", "note_key"]

KINDS = ("notes", "episodes", "facts", "lessons")
"""The namespace roots memory uses."""

_LABEL = re.compile(r"^[^.\x00]+$")


@dataclass(frozen=True, kw_only=True)
class Scope:
    """Whose memory: namespaces are ``(kind, user, agent, family)``."""

    user: str = "default"
    """The person (or tenant) the memories belong to."""
    agent: str = "default"
    """The agent that made them."""
    family: str = "default"
    """The task family they are about (lessons recalled only within it)."""

    def __post_init__(self) -> None:
        for name in ("user", "agent", "family"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _LABEL.match(value):
                raise ConfigError(f"Scope.{name} must be a non-empty string without '.', got {value!r}")

    def namespace(self, kind: str) -> tuple[str, ...]:
        """The namespace of ``kind`` in this scope."""
        if kind not in KINDS:
            raise ConfigError(f"unknown memory kind {kind!r}; valid: {', '.join(KINDS)}")
        return (kind, self.user, self.agent, self.family)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def fact_key(text: str) -> str:
    """Key of a fact: its text lower-cased with whitespace collapsed, hashed."""
    return "fact-" + _digest(" ".join(text.lower().split()))


def note_key(text: str) -> str:
    """Key of a working note (same text, same note)."""
    return "note-" + _digest(text)


class SemanticMemory:
    """Facts: ``remember`` deduplicates, ``recall`` ranks (hybrid)."""

    def __init__(self, store: MemoryStore, scope: Scope) -> None:
        self.store = store
        self.namespace = scope.namespace("facts")

    def remember(self, text: str, *, source: str = "", ttl_minutes: float | None = None, actor: str = "") -> str:
        """Store a fact (the same text again only refreshes it); returns its key."""
        text = text.strip()
        if not text:
            raise ConfigError("a fact needs some text")
        key = fact_key(text)

        def merge(old: dict[str, Any] | None) -> dict[str, Any]:
            sources = list((old or {}).get("sources", []))
            if source and source not in sources:
                sources.append(source)
            return {"kind": "fact", "text": text, "sources": sources}

        self.store.update(self.namespace, key, merge, ttl=ttl_minutes, actor=actor)
        return key

    def recall(self, query: str, *, limit: int = 5) -> list[Hit]:
        return self.store.recall(self.namespace, query, limit=limit)


def _tool_summary(traj: Trajectory) -> tuple[list[str], list[str]]:
    used: list[str] = []
    failed: list[str] = []
    for step in traj.tool_steps():
        if step.call.name not in used:
            used.append(step.call.name)
        if not step.result.ok:
            failed.append(f"{step.call.name}: {step.result.error or step.result.status.value}")
    return used, failed


def episode_summary(traj: Trajectory, *, success: bool | None = None) -> dict[str, Any]:
    """What episodic memory keeps of one trajectory (JSON)."""
    task = next((str(m.get("content", "")) for m in reversed(traj.messages) if m.get("role") == "user"), "")
    used, failed = _tool_summary(traj)
    outcome = {True: "succeeded", False: "failed", None: traj.status}[success]
    parts = [f"Task: {task.strip()[:500]}", f"Outcome: {outcome}; answer: {traj.final_answer!r}"]
    if used:
        parts.append("Tools used: " + ", ".join(used))
    if failed:
        parts.append("Failed calls: " + "; ".join(failed[:5]))
    return {
        "kind": "episode",
        "text": "\n".join(parts),
        "task": task.strip()[:500],
        "trajectory_id": traj.id,
        "task_id": traj.task_id,
        "status": traj.status,
        "success": success,
        "reward": traj.reward,
        "final_answer": traj.final_answer,
        "tools": used,
        "at": traj.finished_at or time.time(),
    }


class EpisodicMemory:
    """Summaries of past episodes, keyed by trajectory id."""

    def __init__(self, store: MemoryStore, scope: Scope) -> None:
        self.store = store
        self.namespace = scope.namespace("episodes")

    def record(self, traj: Trajectory, *, success: bool | None = None, ttl_minutes: float | None = None) -> str:
        """Summarise ``traj`` into memory; returns its key (the trajectory id)."""
        summary = episode_summary(traj, success=success)
        self.store.write_many([(self.namespace, traj.id, summary)], ttl=ttl_minutes, actor=traj.id)
        return traj.id

    def recall(self, query: str, *, limit: int = 5) -> list[Hit]:
        return self.store.recall(self.namespace, query, limit=limit)

    def recent(self, *, limit: int = 10) -> Sequence[Any]:
        return self.store.listing(self.namespace, limit=limit)
