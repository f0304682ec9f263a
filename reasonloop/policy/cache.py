"""A response cache for API policies: SQLite (WAL), keyed by the request's content.

The key is the SHA-256 of the canonical JSON (sorted keys, no whitespace) of
everything that decides the answer: model, sampling settings, messages, tool
schemas, tool format and extra provider arguments. The value is the
:class:`~reasonloop.policy.base.Completion` as JSON. A resumed benchmark run
therefore replays the answers it already paid for, identically, without
calling the API. Failed calls are never stored: the caller only puts successes.

One connection per cache object, guarded by a lock, so a policy serving many
concurrent episodes from one event loop (or threads) can share it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reasonloop.errors import StoreError
from reasonloop.policy.base import Completion

__all__ = ["ResponseCache", "request_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    created_at REAL NOT NULL,
    completion TEXT NOT NULL
)
"""


def request_key(
    *,
    model: str,
    sampling: Mapping[str, Any],
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]],
    tool_format: str,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The cache key of one request: hex SHA-256 of its canonical JSON.

    Args:
        model: The model string (``openai/gpt-4o-mini``).
        sampling: ``SamplingParams.as_dict()``.
        messages: The chat messages sent.
        tools: The tools' JSON schemas.
        tool_format: ``openai``, ``tags`` or ``json``.
        extra: Extra provider arguments that change the answer (e.g. ``reasoning_effort``).

    Returns:
        64 hex characters.
    """
    payload = {
        "model": model,
        "sampling": dict(sampling),
        "messages": list(messages),
        "tools": list(tools),
        "tool_format": tool_format,
        "extra": dict(extra or {}),
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """Completions stored by request key in one SQLite file.

    Args:
        path: The database file (created with its parent directory), or
            ``":memory:"`` for a cache that lives as long as the object.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._conn.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open response cache {self.path}: {exc}") from None
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Completion | None:
        """The stored completion for ``key`` with ``cached=True``, or ``None``.

        A row that no longer decodes (written by an incompatible version) counts
        as a miss and is overwritten by the next :meth:`put`.
        """
        with self._lock:
            row = self._conn.execute("SELECT completion FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        try:
            completion = Completion.model_validate_json(row[0])
        except ValueError:
            self.misses += 1
            return None
        self.hits += 1
        return completion.model_copy(update={"cached": True})

    def put(self, key: str, completion: Completion) -> None:
        """Store ``completion`` under ``key`` (replacing an older answer)."""
        data = completion.model_copy(update={"cached": False}).model_dump_json()
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO responses (key, model, created_at, completion) VALUES (?, ?, ?, ?)",
                (key, completion.model, time.time(), data),
            )

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()
        return int(count)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResponseCache(path={self.path!r}, hits={self.hits}, misses={self.misses})"
