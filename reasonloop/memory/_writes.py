"""The write path of :class:`~reasonloop.memory.store.MemoryStore`: puts, deletes,
atomic updates, evictions and TTL sweeps, each one transaction with its history rows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from langgraph.store.base import NotProvided, PutOp, validate_op_namespace

from reasonloop.errors import ConfigError
from reasonloop.memory import _sql
from reasonloop.memory._filters import index_text
from reasonloop.memory._store_base import StoreBase

__all__ = ["StoreWrites"]


class StoreWrites(StoreBase):
    """Writes of a memory store (see :mod:`reasonloop.memory.store` for the guarantees)."""

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
