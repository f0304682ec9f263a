"""Reads of :class:`~reasonloop.memory.store.MemoryStore`: hybrid recall with explained
scores (FTS5 BM25 candidates, numpy-vector candidates, :func:`~reasonloop.memory.ranking.combine`),
listing, counts and the audit history."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from langgraph.store.base import Item

from reasonloop.errors import ConfigError
from reasonloop.memory import _sql
from reasonloop.memory._filters import matches
from reasonloop.memory._store_base import COLS, Row, StoreBase, to_datetime
from reasonloop.memory.ranking import RankWeights, ScoreParts, combine, normalize_lexical

__all__ = ["Hit", "StoreRecall"]


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


class StoreRecall(StoreBase):
    """Recall, listing, counts and history of a memory store."""

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

    def _rows(self, ids: Iterable[int], now: float) -> list[Row]:
        ids = list(ids)
        out: list[Row] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            out.extend(self._read(
                f"SELECT {COLS} FROM items i JOIN namespaces n ON n.id = i.ns_id "
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
                f"SELECT {COLS} FROM items i JOIN namespaces n ON n.id = i.ns_id WHERE i.ns_id IN ({marks}) "
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
                out.append(Item(value=value, key=r[2], namespace=_sql.ns_split(r[1]), created_at=to_datetime(r[4]),
                                updated_at=to_datetime(r[5])))
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
