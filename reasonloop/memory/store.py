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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    NotProvided,
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
from reasonloop.memory._filters import index_text, matches
from reasonloop.memory._vectors import VectorCache
from reasonloop.memory.embed import Embedder, QueryCache
from reasonloop.memory.ranking import RankWeights, ScoreParts, combine, normalize_lexical

__all__ = ["Hit", "MemoryStore"]

_Row = tuple[int, str, str, str, float, float, float | None, float | None]
_COLS = "i.id, n.ns, i.key, i.value, i.created_at, i.updated_at, i.ttl_minutes, i.expires_at"


@dataclass(frozen=True, kw_only=True)
class Hit:
    """One recalled item and why it ranked where it did."""

    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any]
    created_at: float
    updated_at: float
    scores: ScoreParts

    @property
    def text(self) -> str:
        return str(self.value.get("text", ""))

    def as_dict(self) -> dict[str, Any]:
        """JSON form (what memory steps in a trajectory record)."""
        return {
            "namespace": list(self.namespace),
            "key": self.key,
            "value": self.value,
            "updated_at": self.updated_at,
            "scores": self.scores.as_dict(),
        }


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


class MemoryStore(BaseStore):
    """A LangGraph store on SQLite with FTS5 + numpy-vector hybrid recall."""

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
        self._vectors_at: tuple[int, int] | None = None

    # -- plumbing ----------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[Any]:
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
        with self._lock:
            if self._closed:
                raise ConfigError(f"memory store {self.path} is closed")
            return self._conn.execute(sql, tuple(args)).fetchall()

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

    # -- writes ------------------------------------------------------------------------

    def write_many(
        self,
        writes: Iterable[tuple[tuple[str, ...], str, Mapping[str, Any] | None]],
        *,
        ttl: float | NotProvided | None = NotProvided(),
        index: Literal[False] | list[str] | None = None,
        actor: str | None = None,
        op: str = "put",
    ) -> int:
        """Put (value) or delete (``None``) several items in one transaction.

        Returns:
            Number of items changed.
        """
        ttl_minutes = self._default_ttl(ttl)
        ops = [PutOp(tuple(ns), str(key), None if v is None else dict(v), index, ttl_minutes) for ns, key, v in writes]
        for o in ops:
            validate_op_namespace(o)
            if not o.namespace:
                raise ConfigError("namespace must not be empty")
        return self._apply_puts(ops, actor=self.actor if actor is None else actor, op=op)

    def update(
        self,
        namespace: tuple[str, ...],
        key: str,
        fn: Any,
        *,
        ttl: float | NotProvided | None = NotProvided(),
        actor: str | None = None,
        op: str = "put",
    ) -> dict[str, Any] | None:
        """Atomic read-modify-write: ``fn(old value or None) -> new value or None``.

        Runs inside one write transaction, so concurrent updates of the same item
        (usefulness counters, provenance lists) never lose an increment. ``fn``
        returning ``None`` deletes the item.
        """
        put_ns = tuple(namespace)
        validate_op_namespace(PutOp(put_ns, key, None))
        ttl_minutes = self._default_ttl(ttl)
        now = self._clock()
        with self._tx() as conn:
            row = conn.execute(
                "SELECT i.value FROM items i JOIN namespaces n ON n.id = i.ns_id WHERE n.ns = ? AND i.key = ? "
                "AND (i.expires_at IS NULL OR i.expires_at > ?)",
                (_sql.ns_join(put_ns), key, now),
            ).fetchone()
            new = fn(None if row is None else json.loads(row[0]))
            if new is not None or row is not None:
                value = None if new is None else dict(new)
                self._put_one(conn, PutOp(put_ns, key, value, None, ttl_minutes), now,
                              self.actor if actor is None else actor, op)
        if self._jobs is not None:
            self._jobs.wake()
        return None if new is None else dict(new)

    def _default_ttl(self, ttl: float | NotProvided | None) -> float | None:
        if isinstance(ttl, NotProvided):
            return (self.ttl_config or {}).get("default_ttl")
        return ttl

    def _apply_puts(self, ops: Sequence[PutOp], *, actor: str, op: str = "put") -> int:
        if not ops:
            return 0
        now = self._clock()
        changed = 0
        with self._tx() as conn:
            for put in ops:
                changed += self._put_one(conn, put, now, actor, op)
        if self._jobs is not None:
            self._jobs.wake()
        return changed

    def _ns_id(self, conn: Any, ns: str) -> int:
        row = conn.execute("SELECT id FROM namespaces WHERE ns = ?", (ns,)).fetchone()
        if row is not None:
            return int(row[0])
        return int(conn.execute("INSERT INTO namespaces (ns) VALUES (?)", (ns,)).lastrowid)

    def _put_one(self, conn: Any, put: PutOp, now: float, actor: str, op: str) -> int:
        ns = _sql.ns_join(put.namespace)
        ns_id = self._ns_id(conn, ns)
        old = conn.execute("SELECT id, value, text FROM items WHERE ns_id = ? AND key = ?", (ns_id, put.key)).fetchone()
        if put.value is None:
            if old is None:
                return 0
            self._drop(conn, old[0])
            conn.execute(
                "INSERT INTO history (at, op, ns, key, old_value, new_value, actor) VALUES (?, ?, ?, ?, ?, NULL, ?)",
                (now, "delete" if op == "put" else op, ns, put.key, old[1], actor),
            )
            return 1
        value_json = json.dumps(put.value, ensure_ascii=False, sort_keys=True)
        text = "" if put.index is False else index_text(put.value, put.index or self.index_fields)
        ttl = put.ttl
        expires = None if ttl is None else now + float(ttl) * 60.0
        if old is None:
            item_id = conn.execute(
                "INSERT INTO items (ns_id, key, value, text, created_at, updated_at, ttl_minutes, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (ns_id, put.key, value_json, text, now, now, ttl, expires),
            ).lastrowid
            if text:
                conn.execute("INSERT INTO items_fts (rowid, text) VALUES (?, ?)", (item_id, text))
        else:
            item_id = old[0]
            conn.execute(
                "UPDATE items SET value = ?, text = ?, updated_at = ?, ttl_minutes = ?, expires_at = ? WHERE id = ?",
                (value_json, text, now, ttl, expires, item_id),
            )
            if text != old[2]:
                conn.execute("DELETE FROM items_fts WHERE rowid = ?", (item_id,))
                conn.execute("DELETE FROM vectors WHERE item_id = ?", (item_id,))
                if text:
                    conn.execute("INSERT INTO items_fts (rowid, text) VALUES (?, ?)", (item_id, text))
        conn.execute(
            "INSERT INTO history (at, op, ns, key, old_value, new_value, actor) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (now, op, ns, put.key, None if old is None else old[1], value_json, actor),
        )
        return 1

    @staticmethod
    def _drop(conn: Any, item_id: int) -> None:
        conn.execute("DELETE FROM items WHERE id = ?", (item_id,))
        conn.execute("DELETE FROM items_fts WHERE rowid = ?", (item_id,))
        conn.execute("DELETE FROM vectors WHERE item_id = ?", (item_id,))

    def evict(self, namespace: tuple[str, ...], key: str, *, reason: str = "evict", actor: str | None = None) -> bool:
        """Delete one item, recorded in the history as ``reason`` (e.g. ``evict``)."""
        return self.write_many([(namespace, key, None)], actor=actor, op=reason) > 0

    def sweep_expired(self) -> int:
        """Delete every expired item (history op ``expire``); returns how many."""
        now = self._clock()
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT i.id, n.ns, i.key, i.value FROM items i JOIN namespaces n ON n.id = i.ns_id "
                "WHERE i.expires_at IS NOT NULL AND i.expires_at <= ?",
                (now,),
            ).fetchall()
            for item_id, ns, key, value in rows:
                self._drop(conn, item_id)
                conn.execute(
                    "INSERT INTO history (at, op, ns, key, old_value, new_value, actor) "
                    "VALUES (?, 'expire', ?, ?, ?, NULL, 'ttl')",
                    (now, ns, key, value),
                )
        return len(rows)

    # -- reads -------------------------------------------------------------------------

    def _allowed_ns(self, prefix: tuple[str, ...]) -> list[int]:
        if not prefix:
            return [r[0] for r in self._read("SELECT id FROM namespaces")]
        p = _sql.ns_join(prefix)
        rows = self._read("SELECT id FROM namespaces WHERE ns = ? OR substr(ns, 1, ?) = ?", (p, len(p) + 1, p + "."))
        return [r[0] for r in rows]

    def _rare_terms(self, terms: list[str]) -> list[str]:
        """Drop terms found in more than ``common_fraction`` of the memories (keep the
        rarest if all are common): their BM25 weight is small, and scoring every row
        that contains them is what makes a lexical query slow on a large store."""
        total = self._read("SELECT max(id) FROM items")[0][0] or 0
        cap = int(total * self.common_fraction)
        if len(terms) < 2 or cap < 1000:
            return terms
        counts = {
            t: self._read("SELECT count(*) FROM (SELECT 1 FROM items_fts WHERE items_fts MATCH ? LIMIT ?)", (t, cap + 1))[0][0]
            for t in terms
        }
        rare = [t for t in terms if counts[t] <= cap]
        return rare or [min(terms, key=lambda t: counts[t])]

    def _lexical(self, query: str, allowed: list[int], now: float, n: int) -> dict[int, float]:
        terms = _sql.fts_terms(query)
        if not terms:
            return {}
        match = " OR ".join(self._rare_terms(terms))
        marks = ",".join("?" * len(allowed))
        rows = self._read(
            f"SELECT f.rowid, -bm25(items_fts) FROM items_fts f JOIN items i ON i.id = f.rowid "
            f"WHERE items_fts MATCH ? AND i.ns_id IN ({marks}) AND (i.expires_at IS NULL OR i.expires_at > ?) "
            f"ORDER BY bm25(items_fts) LIMIT ?",
            (match, *allowed, now, n),
        )
        return {int(r[0]): float(r[1]) for r in rows}

    def _vector(self, query: str, allowed: list[int], n: int) -> dict[int, float]:
        if self._vectors is None or self._queries is None or not query.strip():
            return {}
        qvec = self._queries.get(query)
        with self._lock:
            # Skip the catch-up query when nobody (this connection or another) committed since.
            seen = (self._conn.execute("PRAGMA data_version").fetchone()[0], self._generation)
            if seen != self._vectors_at:
                self._vectors.refresh(self._conn)
                self._vectors_at = seen
            return self._vectors.top(qvec, np.asarray(allowed, dtype=np.int64), n)

    def _rows(self, ids: Iterable[int], now: float) -> list[_Row]:
        ids = list(ids)
        out: list[_Row] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            out.extend(self._read(
                f"SELECT {_COLS} FROM items i JOIN namespaces n ON n.id = i.ns_id "
                f"WHERE i.id IN ({','.join('?' * len(chunk))}) AND (i.expires_at IS NULL OR i.expires_at > ?)",
                (*chunk, now),
            ))
        return out

    def recall(
        self,
        namespace_prefix: tuple[str, ...],
        query: str,
        *,
        limit: int = 5,
        offset: int = 0,
        filter: Mapping[str, Any] | None = None,
        weights: RankWeights | None = None,
        refresh_ttl: bool | None = None,
    ) -> list[Hit]:
        """The best ``limit`` items under ``namespace_prefix`` for ``query``, explained.

        Candidates are the top BM25 matches and the nearest vectors (when an
        embedder is set); they are ranked by :func:`reasonloop.memory.ranking.combine`.
        """
        if limit < 1 or offset < 0:
            raise ConfigError("limit must be >= 1 and offset >= 0")
        w = weights or self.weights
        now = self._clock()
        allowed = self._allowed_ns(tuple(namespace_prefix))
        if not allowed:
            return []
        n = max(50, 4 * (limit + offset))
        lex = self._lexical(query, allowed, now, n)
        vec = self._vector(query, allowed, n)
        rows = [r for r in self._rows(set(lex) | set(vec), now) if filter is None or matches(json.loads(r[3]), filter)]
        values = {r[0]: json.loads(r[3]) for r in rows}
        use = {i: float(v["usefulness"]) for i, v in values.items() if isinstance(v.get("usefulness"), int | float)}
        scores = combine(
            [r[0] for r in rows], lexical=normalize_lexical(lex), vector=vec,
            ages_s={r[0]: now - r[5] for r in rows}, usefulness=use, weights=w, use_vector=self._vectors is not None,
        )
        rows.sort(key=lambda r: (-scores[r[0]].total, -r[5], r[0]))
        page = rows[offset : offset + limit]
        if page and self._refresh(refresh_ttl):
            self._touch([r[0] for r in page if r[6] is not None], now)
        return [
            Hit(namespace=_sql.ns_split(r[1]), key=r[2], value=values[r[0]], created_at=r[4], updated_at=r[5],
                scores=scores[r[0]])
            for r in page
        ]

    def _refresh(self, refresh_ttl: bool | None) -> bool:
        if refresh_ttl is not None:
            return refresh_ttl
        return bool((self.ttl_config or {}).get("refresh_on_read", True))

    def _touch(self, ids: list[int], now: float) -> None:
        if not ids:
            return
        with self._tx() as conn:
            conn.execute(
                f"UPDATE items SET expires_at = ? + ttl_minutes * 60.0 WHERE id IN ({','.join('?' * len(ids))}) "
                "AND ttl_minutes IS NOT NULL",
                (now, *ids),
            )

    def listing(
        self, namespace_prefix: tuple[str, ...], *, limit: int = 10, offset: int = 0,
        filter: Mapping[str, Any] | None = None,
    ) -> list[Item]:
        """Live items under a prefix, newest first (no query, no scores)."""
        now = self._clock()
        allowed = self._allowed_ns(tuple(namespace_prefix))
        out: list[Item] = []
        if not allowed:
            return out
        marks = ",".join("?" * len(allowed))
        skipped = 0
        for start in range(0, 1 << 62, 1000):
            rows = self._read(
                f"SELECT {_COLS} FROM items i JOIN namespaces n ON n.id = i.ns_id WHERE i.ns_id IN ({marks}) "
                f"AND (i.expires_at IS NULL OR i.expires_at > ?) ORDER BY i.updated_at DESC, i.id DESC LIMIT 1000 OFFSET ?",
                (*allowed, now, start),
            )
            for r in rows:
                value = json.loads(r[3])
                if not matches(value, filter):
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                out.append(Item(value=value, key=r[2], namespace=_sql.ns_split(r[1]), created_at=_dt(r[4]),
                                updated_at=_dt(r[5])))
                if len(out) >= limit:
                    return out
            if len(rows) < 1000:
                return out
        return out

    def count(self, namespace_prefix: tuple[str, ...] = ()) -> int:
        """Live items under a prefix."""
        allowed = self._allowed_ns(tuple(namespace_prefix))
        if not allowed:
            return 0
        marks = ",".join("?" * len(allowed))
        row = self._read(
            f"SELECT count(*) FROM items WHERE ns_id IN ({marks}) AND (expires_at IS NULL OR expires_at > ?)",
            (*allowed, self._clock()),
        )
        return int(row[0][0])

    def history(self, namespace: tuple[str, ...] | None = None, key: str | None = None, *, limit: int = 100) -> list[dict[str, Any]]:
        """Audit log entries, oldest first (optionally of one namespace / item)."""
        where, args = [], []
        if namespace is not None:
            where.append("ns = ?")
            args.append(_sql.ns_join(namespace))
        if key is not None:
            where.append("key = ?")
            args.append(key)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        rows = self._read(
            f"SELECT id, at, op, ns, key, old_value, new_value, actor FROM history {clause} ORDER BY id LIMIT ?",
            (*args, limit),
        )
        return [
            {"id": r[0], "at": r[1], "op": r[2], "namespace": list(_sql.ns_split(r[3])), "key": r[4],
             "old": None if r[5] is None else json.loads(r[5]), "new": None if r[6] is None else json.loads(r[6]),
             "actor": r[7]}
            for r in rows
        ]

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
                f"SELECT {_COLS} FROM items i JOIN namespaces n ON n.id = i.ns_id WHERE n.ns = ? AND i.key = ? "
                "AND (i.expires_at IS NULL OR i.expires_at > ?)",
                (_sql.ns_join(op.namespace), op.key, now),
            )
            if not rows:
                return None
            r = rows[0]
            if op.refresh_ttl and r[6] is not None:
                self._touch([r[0]], now)
            return Item(value=json.loads(r[3]), key=r[2], namespace=_sql.ns_split(r[1]), created_at=_dt(r[4]),
                        updated_at=_dt(r[5]))
        if isinstance(op, SearchOp):
            if op.query:
                hits = self.recall(op.namespace_prefix, op.query, limit=max(1, op.limit), offset=op.offset,
                                   filter=op.filter, refresh_ttl=op.refresh_ttl)
                return [SearchItem(h.namespace, h.key, h.value, _dt(h.created_at), _dt(h.updated_at), h.scores.total)
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
