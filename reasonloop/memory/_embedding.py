"""Embedding off the write path: batches of pending items, a text-hash cache, and
an optional background thread.

A put only stores text. :meth:`EmbeddingJobs.run_once` takes up to ``batch`` items
that have no vector for the store's model, looks their texts up in
``embed_cache`` (by SHA-256), encodes only the misses, in one call, *outside* the
store lock, and writes the vectors in one transaction, skipping items whose text
changed meanwhile. Several processes may embed the same store: the work may be
done twice, never wrongly.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from reasonloop.memory.embed import text_digest

if TYPE_CHECKING:
    from reasonloop.memory.store import MemoryStore

__all__ = ["EmbeddingJobs"]


class EmbeddingJobs:
    """Embeds a store's pending items, on demand or in a daemon thread."""

    def __init__(self, store: MemoryStore, *, background: bool) -> None:
        if store.embedder is None:
            raise ValueError("EmbeddingJobs needs a store with an embedder")
        self.store = store
        self.embedder = store.embedder
        self.model = store.embedder.model
        self.background = background
        self.encoded = 0
        """Texts actually sent to the encoder (cache misses)."""
        self.cached = 0
        """Vectors served from ``embed_cache``."""
        self.error: str | None = None
        """Last failure of the background thread (it keeps running)."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._run_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Tell the thread new items may be pending (starts it on first use)."""
        if not self.background or self._stop.is_set():
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="memory-embedder", daemon=True)
            self._thread.start()
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            try:
                while not self._stop.is_set() and self.run_once(64) > 0:
                    pass
            except Exception as exc:  # a failing encoder must not kill the writer's process
                self.error = f"{type(exc).__name__}: {exc}"

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _pending(self, batch: int) -> list[tuple[int, str]]:
        return self.store._read(
            "SELECT i.id, i.text FROM items i LEFT JOIN vectors v ON v.item_id = i.id AND v.model = ? "
            "WHERE i.text != '' AND v.item_id IS NULL LIMIT ?",
            (self.model, batch),
        )

    def run_once(self, batch: int = 64) -> int:
        """Embed up to ``batch`` pending items; returns how many got a vector."""
        with self._run_lock:
            todo = self._pending(batch)
            if not todo:
                return 0
            digests = {item_id: text_digest(text) for item_id, text in todo}
            vectors = self._cached(set(digests.values()))
            self.cached += sum(1 for d in digests.values() if d in vectors)
            missing = {d: text for (item_id, text) in todo if (d := digests[item_id]) not in vectors}
            if missing:
                order = list(missing)
                encoded = np.asarray(self.embedder.embed([missing[d] for d in order]), dtype=np.float32)
                self.encoded += len(order)
                vectors.update({d: encoded[i].tobytes() for i, d in enumerate(order)})
                fresh = {d: vectors[d] for d in order}
            else:
                fresh = {}
            return self._write(todo, digests, vectors, fresh)

    def _cached(self, digests: set[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        keys = list(digests)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self.store._read(
                f"SELECT digest, vec FROM embed_cache WHERE model = ? AND digest IN ({','.join('?' * len(chunk))})",
                (self.model, *chunk),
            )
            found.update({r[0]: r[1] for r in rows})
        return found

    def _write(
        self, todo: list[tuple[int, str]], digests: dict[int, str], vectors: dict[str, bytes], fresh: dict[str, Any]
    ) -> int:
        done = 0
        with self.store._tx() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO embed_cache (digest, model, vec) VALUES (?, ?, ?)",
                [(d, self.model, blob) for d, blob in fresh.items()],
            )
            seq = conn.execute("SELECT coalesce(max(seq), 0) FROM vectors WHERE model = ?", (self.model,)).fetchone()[0]
            for item_id, _text in todo:
                row = conn.execute("SELECT text FROM items WHERE id = ?", (item_id,)).fetchone()
                if row is None or text_digest(row[0]) != digests[item_id]:
                    continue  # deleted or rewritten since: the next pass embeds the new text
                seq += 1
                conn.execute(
                    "INSERT OR REPLACE INTO vectors (item_id, model, seq, vec) VALUES (?, ?, ?, ?)",
                    (item_id, self.model, seq, vectors[digests[item_id]]),
                )
                done += 1
        return done

    def flush(self) -> int:
        """Embed until nothing is pending; returns how many items got a vector."""
        total = 0
        while (n := self.run_once(256)) > 0:
            total += n
        return total
