"""MemoryStore: LangGraph's ``BaseStore`` on one SQLite file, with hybrid recall.

    store = MemoryStore("memory.db", embedder=dense_embedder_or_none())
    store.put(("lessons", "alice"), "k1", {"text": "date_diff wants ISO dates"}, ttl=60 * 24)
    hits = store.recall(("lessons",), "which date format does date_diff take?", limit=5)
    hits[0].scores.explain(store.weights)   # '0.93 = 0.45*lexical 1.00 + 0.45*vector 0.81 + ...'

Why not ``langgraph.store.sqlite.SqliteStore``: its vector index needs the
sqlite-vec extension, and the ``sqlite3`` of many Pythons cannot load extensions.
Here vectors live in a plain table and are scored with numpy (see
:mod:`reasonloop.memory._vectors`); lexical search is SQLite's own FTS5 BM25.

* Writes are single transactions (``BEGIN IMMEDIATE``, WAL): concurrent writers
  in other threads or processes wait for each other and lose nothing, and a
  process killed mid-write leaves the last committed state.
* Embedding is off the write path: a put stores the text; vectors are computed in
  batches by :meth:`embed_pending` (a background thread by default) and cached by
  text hash. Until then an item is found lexically.
* TTLs are in minutes (LangGraph's convention); expired items are never returned
  and :meth:`sweep_expired` deletes them. Reads refresh TTLs (``refresh_ttl``).
* Every change is in the ``history`` table: op, namespace, key, old and new value,
  actor (:meth:`history`).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from langgraph.store.base import (
    GetOp,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    validate_op_namespace,
)

from reasonloop.errors import ConfigError
from reasonloop.memory import _sql
from reasonloop.memory._embedding import EmbeddingJobs
from reasonloop.memory._recall import Hit, StoreRecall
from reasonloop.memory._store_base import COLS, to_datetime
from reasonloop.memory._vectors import VectorCache
from reasonloop.memory._writes import StoreWrites
from reasonloop.memory.embed import Embedder, QueryCache
from reasonloop.memory.ranking import RankWeights

__all__ = ["Hit", "MemoryStore"]


class MemoryStore(StoreWrites, StoreRecall):
    """A LangGraph store on SQLite with FTS5 + numpy-vector hybrid recall.

    The write path is in :mod:`reasonloop.memory._writes`, recall and listing in
    :mod:`reasonloop.memory._recall`; both share :class:`~reasonloop.memory._store_base.StoreBase`.
    """

    supports_ttl = True

    def __init__(
        self,
        path: str | Path,
        *,
        embedder: Embedder | None = None,
        ttl: TTLConfig | None = None,
        index_fields: Sequence[str] = ("text",),
        weights: RankWeights | None = None,
        synchronous: _sql.Synchronous = "NORMAL",
        embed_mode: Literal["background", "manual"] = "background",
        actor: str = "",
        clock: Any = time.time,
    ) -> None:
        """Args:
        path: SQLite file (created if missing) or ``":memory:"``.
        embedder: Vectors for hybrid recall; ``None`` ranks by BM25 + recency only.
        ttl: LangGraph TTL config (``default_ttl`` minutes, ``refresh_on_read``).
        index_fields: Value paths whose text is indexed (all string leaves if absent).
        weights: Default ranking weights of :meth:`recall`.
        synchronous: SQLite ``synchronous`` (``FULL`` survives power loss too).
        embed_mode: ``background``: a thread embeds new items in batches;
            ``manual``: only :meth:`embed_pending` / :meth:`flush_embeddings` do.
        actor: Recorded in the history for writes that name no actor.
        clock: Seconds since the epoch (injectable so TTL tests need no sleeping).
        """
        if embed_mode not in ("background", "manual"):
            raise ConfigError(f"embed_mode must be 'background' or 'manual', got {embed_mode!r}")
        self.path = str(path)
        self.embedder = embedder
        self.ttl_config = ttl
        self.index_fields = tuple(index_fields)
        self.weights = weights or RankWeights()
        self.actor = actor
        self._clock = clock
        self._lock = threading.RLock()
        self._conn = _sql.connect(path, synchronous=synchronous)
        self._vectors = VectorCache(embedder.model) if embedder else None
        self._queries = QueryCache(embedder) if embedder else None
        self._jobs = EmbeddingJobs(self, background=embed_mode == "background") if embedder else None
        self.common_fraction = 0.05
        """Query terms in more than this share of the memories are not searched lexically."""
        self._closed = False
        self._generation = 0
        """Commits made through this connection (others show in ``PRAGMA data_version``)."""
        self._vectors_at = None

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop the embedding thread and close the file (idempotent)."""
        if self._jobs is not None:
            self._jobs.stop()
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connection(self) -> Any:
        """The SQLite connection (hold :attr:`lock` while using it)."""
        return self._conn

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    # -- embeddings ----------------------------------------------------------------------

    def embed_pending(self, *, batch: int = 64) -> int:
        """Embed up to ``batch`` items that have no vector yet; returns how many."""
        return 0 if self._jobs is None else self._jobs.run_once(batch)

    def flush_embeddings(self) -> int:
        """Embed everything pending now (tests, before a benchmark); returns how many."""
        return 0 if self._jobs is None else self._jobs.flush()

    # -- LangGraph BaseStore ---------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run LangGraph store ops in order; consecutive puts share one transaction."""
        ops = list(ops)
        results: list[Result] = [None] * len(ops)
        pending: list[PutOp] = []
        for i, op in enumerate(ops):
            validate_op_namespace(op)
            if isinstance(op, PutOp):
                pending.append(op)
                continue
            self._apply_puts(pending, actor=self.actor)
            pending = []
            results[i] = self._run_read(op)
        self._apply_puts(pending, actor=self.actor)
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await asyncio.to_thread(self.batch, list(ops))

    def _run_read(self, op: Op) -> Result:
        if isinstance(op, GetOp):
            now = self._clock()
            rows = self._read(
                f"SELECT {COLS} FROM items i JOIN namespaces n ON n.id = i.ns_id WHERE n.ns = ? AND i.key = ? "
                "AND (i.expires_at IS NULL OR i.expires_at > ?)",
                (_sql.ns_join(op.namespace), op.key, now),
            )
            if not rows:
                return None
            r = rows[0]
            if op.refresh_ttl and r[6] is not None:
                self._touch([r[0]], now)
            return Item(value=json.loads(r[3]), key=r[2], namespace=_sql.ns_split(r[1]),
                        created_at=to_datetime(r[4]), updated_at=to_datetime(r[5]))
        if isinstance(op, SearchOp):
            if op.query:
                hits = self.recall(op.namespace_prefix, op.query, limit=max(1, op.limit), offset=op.offset,
                                   filter=op.filter, refresh_ttl=op.refresh_ttl)
                return [SearchItem(h.namespace, h.key, h.value, to_datetime(h.created_at), to_datetime(h.updated_at),
                                   h.scores.total)
                        for h in hits]
            items = self.listing(op.namespace_prefix, limit=op.limit, offset=op.offset, filter=op.filter)
            return [SearchItem(i.namespace, i.key, i.value, i.created_at, i.updated_at) for i in items]
        if isinstance(op, ListNamespacesOp):
            return self._list_namespaces(op)
        raise ConfigError(f"unsupported store op {type(op).__name__}")

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        rows = self._read(
            "SELECT DISTINCT n.ns FROM namespaces n JOIN items i ON i.ns_id = n.id "
            "WHERE i.expires_at IS NULL OR i.expires_at > ? ORDER BY n.ns",
            (self._clock(),),
        )
        out: list[tuple[str, ...]] = []
        for (text,) in rows:
            ns = _sql.ns_split(text)
            if all(_ns_matches(ns, c.match_type, tuple(c.path)) for c in op.match_conditions or ()):
                ns = ns[: op.max_depth] if op.max_depth is not None else ns
                if ns not in out:
                    out.append(ns)
        return out[op.offset : op.offset + op.limit]


def _ns_matches(ns: tuple[str, ...], match_type: str, path: tuple[str, ...]) -> bool:
    if len(path) > len(ns):
        return False
    part = ns[: len(path)] if match_type == "prefix" else ns[len(ns) - len(path) :]
    return all(p == "*" or p == n for p, n in zip(path, part, strict=True))
