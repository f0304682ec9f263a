"""State and SQLite plumbing shared by the parts of :class:`~reasonloop.memory.store.MemoryStore`.

The store is one class built from parts that share this base: the write path
(:mod:`reasonloop.memory._writes`), recall and listing (:mod:`reasonloop.memory._recall`),
and the lifecycle, embedding and LangGraph ``BaseStore`` operations
(:mod:`reasonloop.memory.store`, whose ``__init__`` sets the attributes declared here).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from langgraph.store.base import BaseStore, NotProvided, TTLConfig

from reasonloop.errors import ConfigError
from reasonloop.memory import _sql

if TYPE_CHECKING:
    from reasonloop.memory._embedding import EmbeddingJobs
    from reasonloop.memory._vectors import VectorCache
    from reasonloop.memory.embed import Embedder, QueryCache
    from reasonloop.memory.ranking import RankWeights

__all__ = ["COLS", "Row", "StoreBase", "to_datetime"]

Row = tuple[int, str, str, str, float, float, float | None, float | None]
"""An item row as :data:`COLS` selects it: id, namespace, key, value JSON, created, updated, ttl, expiry."""
COLS = "i.id, n.ns, i.key, i.value, i.created_at, i.updated_at, i.ttl_minutes, i.expires_at"


def to_datetime(ts: float) -> datetime:
    """Seconds since the epoch as an aware UTC datetime (LangGraph items carry these)."""
    return datetime.fromtimestamp(ts, tz=UTC)


class StoreBase(BaseStore):
    """The connection, lock and settings of a memory store, and its transactions."""

    path: str
    embedder: Embedder | None
    ttl_config: TTLConfig | None
    index_fields: tuple[str, ...]
    weights: RankWeights
    actor: str
    common_fraction: float
    _clock: Any
    _lock: threading.RLock
    _conn: Any
    _vectors: VectorCache | None
    _queries: QueryCache | None
    _jobs: EmbeddingJobs | None
    _closed: bool
    _generation: int
    _vectors_at: tuple[int, int] | None

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One write transaction (``BEGIN IMMEDIATE``: writers in other processes wait, none is lost)."""
        with self._lock:
            if self._closed:
                raise ConfigError(f"memory store {self.path} is closed")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            self._generation += 1

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """All rows of one query, under the store lock."""
        with self._lock:
            if self._closed:
                raise ConfigError(f"memory store {self.path} is closed")
            return self._conn.execute(sql, tuple(args)).fetchall()

    def _default_ttl(self, ttl: float | NotProvided | None) -> float | None:
        if isinstance(ttl, NotProvided):
            return (self.ttl_config or {}).get("default_ttl")
        return ttl

    def _allowed_ns(self, prefix: tuple[str, ...]) -> list[int]:
        if not prefix:
            return [r[0] for r in self._read("SELECT id FROM namespaces")]
        p = _sql.ns_join(prefix)
        rows = self._read("SELECT id FROM namespaces WHERE ns = ? OR substr(ns, 1, ?) = ?", (p, len(p) + 1, p + "."))
        return [r[0] for r in rows]
