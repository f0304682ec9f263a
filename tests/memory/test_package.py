"""The public surface of reasonloop.memory, and what importing it loads."""

from __future__ import annotations

import subprocess
import sys

import reasonloop.memory as memory


def test_exported_members() -> None:
    assert sorted(memory.__all__) == [
        "DenseEmbedder", "Embedder", "EpisodicMemory", "ExperienceLibrary", "HashingEmbedder", "Hit", "LearnReport",
        "Lesson", "LibraryConfig", "Memory", "MemorySessions", "MemoryStore", "MemoryView", "RankWeights",
        "Scope", "ScoreParts", "SemanticMemory", "dense_embedder_or_none", "distill", "memory_tools",
    ]
    for name in memory.__all__:
        assert getattr(memory, name) is not None


def test_import_is_light() -> None:
    code = (
        "import sys, reasonloop.memory; "
        "heavy = [m for m in ('torch', 'sentence_transformers', 'reasonloop.agents', 'bm25s') if m in sys.modules]; "
        "print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
