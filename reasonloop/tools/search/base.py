"""The search back-end protocol and the values that cross it.

Every back end (local BM25, dense, hybrid, a Search-R1 retrieval server, a web
search provider) answers ``search(query, k) -> SearchResult``. A failure is a
result with a status, never an exception: the search tool turns it into a
:class:`~reasonloop.trajectory.schema.ToolResult` the model can read.
"""

from __future__ import annotations

import re
import time
import unicodedata
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from reasonloop.errors import ReasonloopError

__all__ = [
    "MAX_K",
    "MAX_QUERY_CHARS",
    "BackendBase",
    "SearchBackend",
    "SearchFailure",
    "SearchHit",
    "SearchIndexError",
    "SearchResult",
    "SearchStatus",
    "check_query",
    "normalize_query",
]

MAX_QUERY_CHARS = 2_000
"""Longest query a back end accepts; longer ones are invalid, not truncated."""
MAX_K = 100
"""Most hits one call may ask for."""

_WS = re.compile(r"\s+")


class SearchIndexError(ReasonloopError):
    """A local index or a corpus cannot be built or loaded (missing, corrupt, empty)."""


class SearchFailure(Exception):
    """Raised inside a back end's ``_search``; the message is shown to the model.

    Never escapes :meth:`BackendBase.search`.
    """


class SearchStatus(StrEnum):
    """Outcome of one search."""

    OK = "ok"
    INVALID_QUERY = "invalid_query"
    ERROR = "error"
    NOT_CACHED = "not_cached"
    """A frozen cache was asked for a query it does not hold."""


class SearchHit(BaseModel):
    """One retrieved document."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    """Source id: the corpus id, or the URL for web results."""
    title: str = ""
    text: str = ""
    score: float | None = None
    """Back-end specific relevance (BM25 score, cosine, RRF score); higher is better."""
    url: str | None = None


class SearchResult(BaseModel):
    """What one search returned."""

    model_config = ConfigDict(extra="forbid")

    status: SearchStatus
    query: str
    k: int
    backend: str
    hits: list[SearchHit] = Field(default_factory=list)
    error: str | None = None
    cached: bool = False
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is SearchStatus.OK


@runtime_checkable
class SearchBackend(Protocol):
    """Anything that answers a query with ranked hits."""

    @property
    def name(self) -> str:
        """Stable identity (kind + location, never a secret): the cache key prefix."""
        ...

    def search(self, query: str, k: int) -> SearchResult:
        """Return up to ``k`` hits, best first; never raises on bad input."""
        ...


def normalize_query(query: str) -> str:
    """NFC, whitespace collapsed and stripped: equal queries share one cache entry."""
    return _WS.sub(" ", unicodedata.normalize("NFC", query)).strip()


def check_query(query: Any, k: Any, *, max_chars: int = MAX_QUERY_CHARS, max_k: int = MAX_K) -> str | None:
    """Why ``(query, k)`` is not a valid search, or ``None`` when it is."""
    if not isinstance(query, str):
        return f"query must be a string, got {type(query).__name__}"
    if isinstance(k, bool) or not isinstance(k, int):
        return f"k must be an integer, got {type(k).__name__}"
    if not 1 <= k <= max_k:
        return f"k must be between 1 and {max_k}, got {k}"
    if len(query) > max_chars:
        return f"query is {len(query)} characters long; the limit is {max_chars}: ask a shorter question"
    if "\x00" in query:
        return "query contains a NUL character"
    if not normalize_query(query):
        return "query is empty: write the words to search for"
    try:
        query.encode("utf-8")
    except UnicodeEncodeError:
        return "query is not valid Unicode (it contains lone surrogates)"
    return None


class BackendBase:
    """Validation, timing and failure capture around a back end's ``_search``.

    Subclasses set ``name`` and implement ``_search(query, k) -> list[SearchHit]``;
    raising :class:`SearchFailure` (or anything else) gives an ``error`` result.
    """

    name: str = "backend"
    max_query_chars: int = MAX_QUERY_CHARS

    def search(self, query: str, k: int) -> SearchResult:
        start = time.perf_counter()
        problem = check_query(query, k, max_chars=self.max_query_chars)
        if problem is not None:
            return SearchResult(
                status=SearchStatus.INVALID_QUERY,
                query=query if isinstance(query, str) else repr(query)[:200],
                k=k if isinstance(k, int) else 0,
                backend=self.name,
                error=problem,
            )
        text = normalize_query(query)
        try:
            hits = self._search(text, k)
        except SearchFailure as exc:
            return self._failed(text, k, str(exc), start)
        except Exception as exc:  # a back end's bug must not end the episode
            return self._failed(text, k, f"{self.name} failed: {type(exc).__name__}: {exc}", start)
        return SearchResult(
            status=SearchStatus.OK,
            query=text,
            k=k,
            backend=self.name,
            hits=list(hits)[:k],
            duration_s=time.perf_counter() - start,
        )

    def _failed(self, query: str, k: int, message: str, start: float) -> SearchResult:
        return SearchResult(
            status=SearchStatus.ERROR,
            query=query,
            k=k,
            backend=self.name,
            error=message,
            duration_s=time.perf_counter() - start,
        )

    def _search(self, query: str, k: int) -> list[SearchHit]:
        raise NotImplementedError
