"""The search package's public surface, and that importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import reasonloop.tools.search as search

EXPORTED = {
    "METHODS", "WEB_PROVIDERS", "BM25Backend", "BM25Index", "BadLine", "CachedBackend", "DenseBackend",
    "DenseEncoder", "DenseIndex", "HybridBackend", "IndexBackend", "IndexManifest", "LiteLLMSearchBackend",
    "LocalIndex", "QueryCache", "RetrievalServerBackend", "RetryConfig", "SearchBackend", "SearchFailure",
    "SearchHit", "SearchIndexError", "SearchResult", "SearchStatus", "SearchToolConfig", "build_index",
    "dense_unavailable", "load_index", "neutralize", "read_corpus", "reciprocal_rank_fusion", "render_result",
    "search_tool", "to_tool_result",
}  # fmt: skip


def test_exported_members() -> None:
    assert set(search.__all__) == EXPORTED
    for name in search.__all__:
        assert getattr(search, name) is not None


def test_every_backend_satisfies_the_protocol() -> None:
    backends = [
        search.RetrievalServerBackend("http://127.0.0.1:9"),
        search.LiteLLMSearchBackend("searxng", api_base="http://127.0.0.1:9"),
        search.IndexBackend("/nonexistent"),
    ]
    for backend in backends:
        assert isinstance(backend, search.SearchBackend)


def test_import_does_not_load_heavy_dependencies() -> None:
    code = (
        "import sys, reasonloop.tools.search\n"
        "heavy = [m for m in ('torch', 'litellm', 'sentence_transformers', 'bm25s', 'scipy') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""
