"""The ``search`` tool: any back end, cached, rendered as delimited data.

    tool = search_tool(index_dir="wiki-index")                      # local BM25
    tool = search_tool(index_dir="wiki-index", method="hybrid")     # BM25 + dense, RRF
    tool = search_tool(backend=RetrievalServerBackend("http://127.0.0.1:8000"),
                       cache_path="runs/search.sqlite", frozen=True)

Every outcome is a :class:`~reasonloop.trajectory.schema.ToolResult`: bad
arguments are ``invalid_arguments``, a missing index, a dead server or a frozen
cache miss are ``error`` with a message the model can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reasonloop.errors import ConfigError
from reasonloop.tools.base import Tool, tool
from reasonloop.tools.search.base import (
    MAX_K,
    MAX_QUERY_CHARS,
    BackendBase,
    SearchBackend,
    SearchFailure,
    SearchHit,
    SearchIndexError,
    SearchResult,
    SearchStatus,
    check_query,
)
from reasonloop.tools.search.cache import CachedBackend, QueryCache
from reasonloop.tools.search.index import METHODS, LocalIndex, load_index
from reasonloop.tools.search.render import neutralize, render_result
from reasonloop.trajectory.schema import ToolResult, ToolStatus

__all__ = ["IndexBackend", "SearchToolConfig", "search_tool", "to_tool_result"]


@dataclass(kw_only=True)
class SearchToolConfig:
    """Limits and presentation of the search tool."""

    name: str = "search"
    """Name the model calls the tool by."""
    default_k: int = 3
    """Documents returned when the model does not say how many."""
    max_k: int = 10
    """Most documents one call may ask for."""
    max_query_chars: int = 1_000
    """Longer queries are rejected (``invalid_arguments``), not truncated."""
    snippet_chars: int = 500
    """Each document's text is cut to this many characters."""
    timeout_s: float = 60.0
    """Wall-clock limit of one call, retries included."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_k <= MAX_K:
            raise ConfigError(f"max_k must be between 1 and {MAX_K}")
        if not 1 <= self.default_k <= self.max_k:
            raise ConfigError("default_k must be between 1 and max_k")
        if not 1 <= self.max_query_chars <= MAX_QUERY_CHARS:
            raise ConfigError(f"max_query_chars must be between 1 and {MAX_QUERY_CHARS}")
        if self.snippet_chars < 20:
            raise ConfigError("snippet_chars must be >= 20")
        if self.timeout_s <= 0:
            raise ConfigError("timeout_s must be > 0")


class IndexBackend(BackendBase):
    """A local index loaded on first use; while it cannot be loaded, searches are errors.

    Loading lazily lets a tool be defined before its index is built, and turns a
    missing or corrupt index into an observation instead of a crash.
    """

    def __init__(self, index_dir: str | Path, *, method: str = "bm25") -> None:
        if method not in METHODS:
            from reasonloop.errors import UnknownNameError

            raise UnknownNameError("search method", method, list(METHODS))
        self.index_dir = Path(index_dir)
        self.method = method
        self._index: LocalIndex | None = None
        self._backend: SearchBackend | None = None

    @property
    def name(self) -> str:  # type: ignore[override]
        backend = self._load_quietly()
        return backend.name if backend is not None else f"{self.method}:{self.index_dir}"

    def _load(self) -> SearchBackend:
        if self._backend is None:
            index = load_index(self.index_dir)
            self._backend = index.backend(self.method)
            self._index = index
        return self._backend

    def _load_quietly(self) -> SearchBackend | None:
        try:
            return self._load()
        except SearchIndexError:
            return None

    def _search(self, query: str, k: int) -> list[SearchHit]:
        try:
            backend = self._load()
        except SearchIndexError as exc:
            raise SearchFailure(str(exc)) from exc
        result = backend.search(query, k)
        if not result.ok:
            raise SearchFailure(result.error or f"{backend.name} failed")
        return result.hits


_STATUS = {
    SearchStatus.OK: ToolStatus.OK,
    SearchStatus.INVALID_QUERY: ToolStatus.INVALID_ARGUMENTS,
    SearchStatus.ERROR: ToolStatus.ERROR,
    SearchStatus.NOT_CACHED: ToolStatus.ERROR,
}


def to_tool_result(result: SearchResult, *, snippet_chars: int = 500) -> ToolResult:
    """The tool's view of a search: rendered text for the model, structured hits in ``data``."""
    data = {
        "status": result.status.value,
        "query": result.query,
        "k": result.k,
        "backend": result.backend,
        "cached": result.cached,
        "hits": [h.model_dump(mode="json") for h in result.hits],
    }
    if result.ok:
        return ToolResult(
            status=ToolStatus.OK,
            output=render_result(result, snippet_chars=snippet_chars),
            data=data,
            duration_s=result.duration_s,
        )
    # Error text can quote a server's answer: neutralise it like a snippet.
    return ToolResult(
        status=_STATUS[result.status],
        error=neutralize(result.error or result.status.value, max_chars=600),
        data=data,
        duration_s=result.duration_s,
    )


def search_tool(
    index_dir: str | Path | None = None,
    *,
    backend: SearchBackend | None = None,
    method: str = "bm25",
    cache_path: str | Path | None = None,
    frozen: bool = False,
    config: SearchToolConfig | None = None,
) -> Tool:
    """Build the ``search`` tool over a local index or any back end.

    Args:
        index_dir: A directory made by :func:`~reasonloop.tools.search.index.build_index`
            (loaded on the first call).
        backend: Any :class:`~reasonloop.tools.search.base.SearchBackend` instead of an index.
        method: Retrieval over ``index_dir``: ``bm25``, ``dense`` or ``hybrid``.
        cache_path: SQLite file of the persistent query cache (none when ``None``).
        frozen: Serve only cached answers; a miss is an error result, never a request.
        config: Limits and presentation.

    Raises:
        ConfigError: Neither or both of ``index_dir`` and ``backend``; ``frozen`` without a cache.
    """
    cfg = config or SearchToolConfig()
    if (index_dir is None) == (backend is None):
        raise ConfigError("give exactly one of index_dir and backend")
    if frozen and cache_path is None:
        raise ConfigError("frozen=True needs a cache_path to serve answers from")
    inner: SearchBackend = IndexBackend(index_dir, method=method) if index_dir is not None else backend  # type: ignore[assignment]
    source: SearchBackend = (
        CachedBackend(inner, QueryCache(cache_path), frozen=frozen) if cache_path is not None else inner
    )

    def search(query: str, k: int = cfg.default_k) -> ToolResult:
        problem = check_query(query, k, max_chars=cfg.max_query_chars, max_k=cfg.max_k)
        if problem is not None:
            return ToolResult(status=ToolStatus.INVALID_ARGUMENTS, error=f"invalid arguments for {cfg.name}: {problem}")
        return to_tool_result(source.search(query, k), snippet_chars=cfg.snippet_chars)

    search.__doc__ = f"""Search for documents and return numbered snippets with their source ids.

        Args:
            query: What to look for: a few specific keywords or a short phrase (at most {cfg.max_query_chars} characters).
            k: How many documents to return, 1 to {cfg.max_k}.
        """
    return tool(search, name=cfg.name, timeout_s=cfg.timeout_s)
