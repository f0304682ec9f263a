"""Search: local BM25 / dense / hybrid indexes, retrieval servers and web search, one tool.

Build an index, then give agents the tool::

    from reasonloop.tools.search import build_index, search_tool

    build_index("corpus.jsonl", "corpus-index")
    search = search_tool(index_dir="corpus-index")

Heavy dependencies (sentence-transformers, litellm) load on first use only.
"""

from __future__ import annotations

from reasonloop.tools.search.base import (
    SearchBackend,
    SearchFailure,
    SearchHit,
    SearchIndexError,
    SearchResult,
    SearchStatus,
)
from reasonloop.tools.search.bm25 import BM25Backend, BM25Index
from reasonloop.tools.search.cache import CachedBackend, QueryCache
from reasonloop.tools.search.corpus import BadLine, read_corpus
from reasonloop.tools.search.dense import DenseBackend, DenseEncoder, DenseIndex, dense_unavailable
from reasonloop.tools.search.hybrid import HybridBackend, reciprocal_rank_fusion
from reasonloop.tools.search.index import METHODS, IndexManifest, LocalIndex, build_index, load_index
from reasonloop.tools.search.render import neutralize, render_result
from reasonloop.tools.search.retrieval_server import RetrievalServerBackend
from reasonloop.tools.search.retry import RetryConfig
from reasonloop.tools.search.tool import IndexBackend, SearchToolConfig, search_tool, to_tool_result
from reasonloop.tools.search.web import WEB_PROVIDERS, LiteLLMSearchBackend

__all__ = [
    "METHODS",
    "WEB_PROVIDERS",
    "BM25Backend",
    "BM25Index",
    "BadLine",
    "CachedBackend",
    "DenseBackend",
    "DenseEncoder",
    "DenseIndex",
    "HybridBackend",
    "IndexBackend",
    "IndexManifest",
    "LiteLLMSearchBackend",
    "LocalIndex",
    "QueryCache",
    "RetrievalServerBackend",
    "RetryConfig",
    "SearchBackend",
    "SearchFailure",
    "SearchHit",
    "SearchIndexError",
    "SearchResult",
    "SearchStatus",
    "SearchToolConfig",
    "build_index",
    "dense_unavailable",
    "load_index",
    "neutralize",
    "read_corpus",
    "reciprocal_rank_fusion",
    "render_result",
    "search_tool",
    "to_tool_result",
]
