"""SQLite layout of the memory store, and the small helpers around it.

Tables (one file, WAL journal):

* ``namespaces(id, ns)``: each namespace once, labels joined with ``.`` (LangGraph
  forbids ``.`` inside a label, so the join is unambiguous).
* ``items``: one row per (namespace, key): JSON value, indexed text, timestamps, TTL.
* ``items_fts``: FTS5 index of ``items.text`` (rowid = item id), porter-stemmed, BM25.
* ``vectors``: the embedding of each indexed item per embedding model; ``seq`` grows
  with every write so a reader can load only what changed.
* ``embed_cache``: vectors by SHA-256 of the text and model (a text is encoded once).
* ``history``: the audit log: every put, delete, expiry and eviction, with the old
  and new value and who made it.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Literal

__all__ = ["SCHEMA", "connect", "fts_query", "fts_terms", "ns_join", "ns_split"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS namespaces (
    id INTEGER PRIMARY KEY,
    ns TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    ns_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    text TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    ttl_minutes REAL,
    expires_at REAL,
    UNIQUE (ns_id, key)
);
CREATE INDEX IF NOT EXISTS items_expires ON items (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_updated ON items (updated_at);
CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5 (text, tokenize = 'porter unicode61');
CREATE TABLE IF NOT EXISTS vectors (
    item_id INTEGER NOT NULL,
    model TEXT NOT NULL,
    seq INTEGER NOT NULL,
    vec BLOB NOT NULL,
    PRIMARY KEY (item_id, model)
);
CREATE INDEX IF NOT EXISTS vectors_seq ON vectors (model, seq);
CREATE TABLE IF NOT EXISTS embed_cache (
    digest TEXT NOT NULL,
    model TEXT NOT NULL,
    vec BLOB NOT NULL,
    PRIMARY KEY (digest, model)
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    op TEXT NOT NULL,
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    actor TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS history_item ON history (ns, key);
"""

Synchronous = Literal["FULL", "NORMAL"]


def connect(
    path: str | Path, *, synchronous: Synchronous = "NORMAL", busy_timeout_s: float = 30.0
) -> sqlite3.Connection:
    """Open (and create) a store file: WAL journal, autocommit, explicit transactions.

    ``synchronous=NORMAL`` in WAL mode never corrupts the file on a crash; the last
    transactions may be lost on power failure (not on a killed process). ``FULL``
    makes every commit durable on power loss too, at the cost of an fsync per commit.
    """
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
    conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.executescript(SCHEMA)  # idempotent; concurrent openers wait on the busy timeout
    return conn


def ns_join(namespace: tuple[str, ...]) -> str:
    """A namespace tuple as stored text."""
    return ".".join(namespace)


def ns_split(text: str) -> tuple[str, ...]:
    """Stored text back to a namespace tuple."""
    return tuple(text.split(".")) if text else ()


_TERM = re.compile(r"\w+", re.UNICODE)
# Words that match most memories: OR-ing them in makes FTS5 score nearly every row.
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)


def fts_terms(text: str, *, max_terms: int = 64) -> list[str]:
    """The distinct, quoted, non-stop-word terms of ``text`` (FTS5 phrase syntax)."""
    terms: list[str] = []
    for term in _TERM.findall(text.lower()):
        quoted = f'"{term}"'
        if term not in _STOP and quoted not in terms:
            terms.append(quoted)
        if len(terms) >= max_terms:
            break
    return terms


def fts_query(text: str, *, max_terms: int = 64) -> str | None:
    """Free text as an FTS5 query: each word quoted (no operator injection), OR-ed.

    Returns ``None`` when the text has no word besides stop words.
    """
    terms: list[str] = []
    seen: set[str] = set()
    for term in _TERM.findall(text.lower()):
        if term not in seen and term not in _STOP:
            seen.add(term)
            terms.append(f'"{term}"')
        if len(terms) >= max_terms:
            break
    return " OR ".join(terms) if terms else None
