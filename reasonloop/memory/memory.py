"""Memory: the store, one scope, and its four kinds behind one object.

    memory = Memory.open("memory.db", scope=Scope(user="alice", agent="react", family="dates"))
    memory.facts.remember("The fiscal year starts on April 1.")
    hits = memory.recall("when does the fiscal year start?")        # {"facts": [...], ...}
    report = memory.learn(trajectory, success=True)                 # lessons + episode summary
    tools = memory.tools()                                          # memory_search, memory_write
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasonloop.memory.embed import Embedder
from reasonloop.memory.experience import ExperienceLibrary, LearnReport, LibraryConfig
from reasonloop.memory.kinds import EpisodicMemory, Scope, SemanticMemory
from reasonloop.memory.store import Hit, MemoryStore
from reasonloop.memory.view import CommitPolicy, MemorySessions, MemoryView
from reasonloop.trajectory.schema import Trajectory

__all__ = ["Memory"]


class Memory:
    """Long-term memory of one scope: facts, episodes, lessons, and episode views."""

    def __init__(
        self,
        store: MemoryStore,
        *,
        scope: Scope | None = None,
        library: LibraryConfig | None = None,
        commit: CommitPolicy = "on_close",
    ) -> None:
        """Args:
        store: Where memories live (shared by every scope using the file).
        scope: User / agent / task family of this memory.
        library: How lessons are kept and forgotten.
        commit: Whether an episode's own writes (``memory_write``) reach the store
            when the episode ends (``on_close``) or are dropped (``never``: rollouts).
        """
        self.store = store
        self.scope = scope or Scope()
        self.facts = SemanticMemory(store, self.scope)
        self.episodes = EpisodicMemory(store, self.scope)
        self.lessons = ExperienceLibrary(store, self.scope, library)
        self.sessions = MemorySessions(store, commit=commit)

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        scope: Scope | None = None,
        embedder: Embedder | None = None,
        library: LibraryConfig | None = None,
        commit: CommitPolicy = "on_close",
        **store_options: Any,
    ) -> Memory:
        """Open (or create) a store file and wrap it (``store_options`` go to :class:`MemoryStore`)."""
        return cls(MemoryStore(path, embedder=embedder, **store_options), scope=scope, library=library, commit=commit)

    def namespace(self, kind: str) -> tuple[str, ...]:
        return self.scope.namespace(kind)

    def view(self, episode_id: str = "") -> MemoryView:
        """A fresh episode view (what the memory tools get per episode)."""
        view = self.sessions.open()
        view.episode_id = episode_id
        return view

    def recall(self, query: str, *, kinds: Sequence[str] = ("lessons", "facts", "episodes"), limit: int = 3) -> dict[str, list[Hit]]:
        """The best ``limit`` memories of each kind for ``query``."""
        return {kind: self.store.recall(self.namespace(kind), query, limit=limit) for kind in kinds}

    def learn(self, traj: Trajectory, *, success: bool | None = None) -> LearnReport:
        """After an episode: credit recalled lessons, distill new ones, keep a summary.

        ``success`` defaults to ``reward > 0`` when the trajectory has rewards.
        """
        if success is None and traj.rewards:
            success = traj.reward > 0
        task = next((str(m.get("content", "")) for m in reversed(traj.messages) if m.get("role") == "user"), "")
        report = self.lessons.learn(task, traj.steps, trajectory_id=traj.id, success=success)
        self.episodes.record(traj, success=success)
        return report

    def tools(self) -> list[Any]:
        """``memory_search`` and ``memory_write``, sharing this memory's episode views."""
        from reasonloop.memory.tools import memory_tools

        return memory_tools(self)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
