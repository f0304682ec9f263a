"""In-process matrix of a store's vectors, scored with numpy.

SQLite keeps the vectors (``vectors`` table); this cache keeps them as one
``(n, dim)`` float32 matrix plus the item id and namespace id of each row, and
catches up with other writers incrementally: rows whose ``seq`` is newer than the
last one seen are loaded, and a count mismatch (something was deleted) triggers
a reload of the id list. A query is one matrix-vector product over the rows of
the allowed namespaces: exact, no approximate index to tune.
"""

from __future__ import annotations

import sqlite3

import numpy as np

__all__ = ["VectorCache"]


class VectorCache:
    """Vectors of one embedding model, mirrored from SQLite."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.ids = np.zeros(0, dtype=np.int64)
        self.ns_ids = np.zeros(0, dtype=np.int64)
        self.matrix: np.ndarray | None = None
        self._row: dict[int, int] = {}
        self._seq = 0

    def refresh(self, conn: sqlite3.Connection) -> None:
        """Catch up with the table (call under the store's lock)."""
        count, max_seq = conn.execute(
            "SELECT count(*), coalesce(max(seq), 0) FROM vectors WHERE model = ?", (self.model,)
        ).fetchone()
        if max_seq > self._seq:
            rows = conn.execute(
                "SELECT v.item_id, i.ns_id, v.vec, v.seq FROM vectors v JOIN items i ON i.id = v.item_id "
                "WHERE v.model = ? AND v.seq > ?",
                (self.model, self._seq),
            ).fetchall()
            self._apply(rows)
            self._seq = max_seq
        if count != len(self._row):
            live = {r[0] for r in conn.execute("SELECT item_id FROM vectors WHERE model = ?", (self.model,))}
            self._keep(live)

    def _apply(self, rows: list[tuple[int, int, bytes, int]]) -> None:
        if not rows:
            return
        new_ids, new_ns, new_vecs = [], [], []
        for item_id, ns_id, blob, _seq in rows:
            vec = np.frombuffer(blob, dtype=np.float32)
            row = self._row.get(item_id)
            if row is not None and self.matrix is not None and self.matrix.shape[1] == vec.shape[0]:
                self.matrix[row] = vec
            else:
                new_ids.append(item_id)
                new_ns.append(ns_id)
                new_vecs.append(vec)
        if not new_vecs:
            return
        block = np.stack(new_vecs).astype(np.float32)
        start = len(self.ids)
        self.matrix = block if self.matrix is None else np.concatenate([self.matrix, block])
        self.ids = np.concatenate([self.ids, np.asarray(new_ids, dtype=np.int64)])
        self.ns_ids = np.concatenate([self.ns_ids, np.asarray(new_ns, dtype=np.int64)])
        for offset, item_id in enumerate(new_ids):
            self._row[item_id] = start + offset

    def _keep(self, live: set[int]) -> None:
        mask = np.fromiter((int(i) in live for i in self.ids), dtype=bool, count=len(self.ids))
        self.ids, self.ns_ids = self.ids[mask], self.ns_ids[mask]
        if self.matrix is not None:
            self.matrix = self.matrix[mask]
        self._row = {int(item_id): row for row, item_id in enumerate(self.ids)}

    def top(self, query: np.ndarray, allowed_ns: np.ndarray, k: int) -> dict[int, float]:
        """Cosine similarity of the ``k`` nearest rows among ``allowed_ns`` namespaces.

        Args:
            query: L2-normalised query vector, shape ``(dim,)``.
            allowed_ns: Namespace ids to search in.
            k: How many to return.

        Returns:
            ``{item_id: cosine}``.
        """
        if self.matrix is None or not len(self.ids) or k < 1:
            return {}
        if self.matrix.shape[1] != query.shape[0]:
            return {}
        rows = np.flatnonzero(np.isin(self.ns_ids, allowed_ns))
        if not len(rows):
            return {}
        sub = self.matrix if len(rows) == len(self.ids) else self.matrix[rows]
        sims = sub @ query  # (len(rows),)
        k = min(k, len(rows))
        best = np.argpartition(-sims, k - 1)[:k]
        return {int(self.ids[rows[j]]): float(sims[j]) for j in best}
