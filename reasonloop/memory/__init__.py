"""Long-term agent memory on LangGraph's store API, and an experience library.

* :class:`MemoryStore`: a LangGraph ``BaseStore`` on SQLite (WAL): FTS5 BM25 +
  numpy vectors + recency hybrid recall with explained scores, TTLs, audit history.
* :class:`Memory`: one scope (user / agent / task family) with its kinds: working
  notes, episodic summaries, semantic facts, the :class:`ExperienceLibrary`.
* :class:`MemoryView`: an episode's copy-on-write view; forks with the episode.
* :func:`memory_tools`, :func:`with_memory`: memory in agents (tools, recall and
  reflect nodes, memory steps in the trajectory).

``with_memory`` and ``RecallConfig`` (graph integration) live in :mod:`reasonloop.agents.memory`.
"""

from __future__ import annotations

from reasonloop.memory.embed import DenseEmbedder, Embedder, HashingEmbedder, dense_embedder_or_none
from reasonloop.memory.experience import ExperienceLibrary, LearnReport, Lesson, LibraryConfig, distill
from reasonloop.memory.kinds import EpisodicMemory, Scope, SemanticMemory
from reasonloop.memory.memory import Memory
from reasonloop.memory.ranking import RankWeights, ScoreParts
from reasonloop.memory.store import Hit, MemoryStore
from reasonloop.memory.tools import memory_tools
from reasonloop.memory.view import MemorySessions, MemoryView

__all__ = [
    "DenseEmbedder",
    "Embedder",
    "EpisodicMemory",
    "ExperienceLibrary",
    "HashingEmbedder",
    "Hit",
    "LearnReport",
    "Lesson",
    "LibraryConfig",
    "Memory",
    "MemorySessions",
    "MemoryStore",
    "MemoryView",
    "RankWeights",
    "ScoreParts",
    "Scope",
    "SemanticMemory",
    "dense_embedder_or_none",
    "distill",
    "memory_tools",
]

