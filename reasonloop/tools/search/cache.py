"""A persistent query cache, so rollouts that search are reproducible.

One SQLite file (WAL) maps ``(backend name, normalised query, k)`` to the hits
first returned. The first answer stored wins: when two workers race on a miss,
both end up serving the row that was committed, so every later read is equal.

``frozen=True`` serves only what is stored: a miss is a ``not_cached`` result and
no request leaves the process. A training run freezes its cache to make every
rollout see the same documents as the run it resumes or reproduces.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from reasonloop.tools.search.base import (
    SearchBackend,
    SearchHit,
    SearchIndexError,
    SearchResult,
    SearchStatus,
    check_query,
    normalize_query,
)

__all__ = ["CachedBackend", "QueryCache"]

_HITS = TypeAdapter(list[SearchHit])
_SCHEMA = """
CREATE TABLE IF NOT EXISTS search_cache (
    backend TEXT NOT NULL,
    query TEXT NOT NULL,
    k INTEGER NOT NULL,
    hits TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (backend, query, k)
)
"""


class QueryCache:
    """SQLite store of search answers (thread-safe; several processes may share the file)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise SearchIndexError(f"search cache {self.path} cannot be opened: {exc}") from exc

    def get(self, backend: str, query: str, k: int) -> list[SearchHit] | None:
        """The stored hits, or ``None`` on a miss (an unreadable row counts as a miss)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT hits FROM search_cache WHERE backend=? AND query=? AND k=?",
                (backend, normalize_query(query), k),
            ).fetchone()
        if row is None:
            return None
        try:
            return _HITS.validate_json(row[0])
        except ValidationError:
            return None

    def put(self, backend: str, query: str, k: int, hits: list[SearchHit]) -> list[SearchHit]:
        """Store ``hits`` unless an answer is already stored; return the stored answer."""
        payload = json.dumps([h.model_dump(mode="json") for h in hits], ensure_ascii=False)
        key = (backend, normalize_query(query), k)
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO search_cache (backend, query, k, hits, created_at) VALUES (?, ?, ?, ?, ?)",
                (*key, payload, time.time()),
            )
        stored = self.get(*key)
        return hits if stored is None else stored

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM search_cache").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class CachedBackend:
    """Serves ``inner`` through a :class:`QueryCache`; only ``ok`` answers are stored."""

    def __init__(self, inner: SearchBackend, cache: QueryCache, *, frozen: bool = False) -> None:
        self.inner = inner
        self.cache = cache
        self.frozen = frozen

    @property
    def name(self) -> str:
        return self.inner.name

    def search(self, query: str, k: int) -> SearchResult:
        start = time.perf_counter()
        problem = check_query(query, k)
        if problem is not None:
            # Let the inner back end phrase the rejection; it does not touch the network.
            return self.inner.search(query, k)
        try:
            stored = self.cache.get(self.name, query, k)
        except sqlite3.Error as exc:
            return self._result(query, k, SearchStatus.ERROR, start, error=f"search cache unreadable: {exc}")
        if stored is not None:
            return self._result(query, k, SearchStatus.OK, start, hits=stored, cached=True)
        if self.frozen:
            return self._result(
                query,
                k,
                SearchStatus.NOT_CACHED,
                start,
                error="this search is not in the frozen cache (frozen mode makes no new requests); try another query",
            )
        result = self.inner.search(query, k)
        if result.ok:
            try:
                hits = self.cache.put(self.name, query, k, result.hits)
            except sqlite3.Error as exc:
                return self._result(query, k, SearchStatus.ERROR, start, error=f"search cache unwritable: {exc}")
            result = result.model_copy(update={"hits": hits})
        return result

    def _result(
        self,
        query: str,
        k: int,
        status: SearchStatus,
        start: float,
        *,
        hits: list[SearchHit] | None = None,
        error: str | None = None,
        cached: bool = False,
    ) -> SearchResult:
        return SearchResult(
            status=status,
            query=normalize_query(query),
            k=k,
            backend=self.name,
            hits=hits or [],
            error=error,
            cached=cached,
            duration_s=time.perf_counter() - start,
        )
