"""An episode's view of memory: reads see the store, writes stay in a private layer.

A :class:`MemoryView` is a copy-on-write overlay over a :class:`MemoryStore`:
``put``/``delete`` go to the view's own dictionary (a deleted key is a tombstone),
reads look there first, then in the store. ``fork()`` copies the overlay, so a
branch starts with everything its parent wrote so far and nothing either writes
afterwards is visible to the other. ``commit()`` writes the overlay to the store
in one transaction (the history records the episode as the actor); working notes
(namespaces under ``notes``) are never committed: they live and die with the episode.

Views forked from one another form a *family*. When a member commits, the family
remembers what each key held before; the other members keep reading that older
value, so a branch that ends early (and commits) does not leak into a sibling
still running. Writes of episodes outside the family are visible once committed.
A view is opened lazily, on the episode's first memory tool call: branches forked
before that open unrelated views (and see each other's commits once they end).

:class:`MemorySessions` is the :class:`~reasonloop.tools.base.SessionFactory` that
gives each episode its view: the memory tools declare it, so an agent's
``ToolsetSession`` opens one view per episode, forks it with the episode, and
closes (commits or drops) it when the episode ends.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any, Literal

from reasonloop.errors import ConfigError
from reasonloop.memory._sql import fts_query
from reasonloop.memory.ranking import NEUTRAL_USEFULNESS, ScoreParts
from reasonloop.memory.store import Hit, MemoryStore

__all__ = ["WORKING_KIND", "CommitPolicy", "MemorySessions", "MemoryView"]

WORKING_KIND = "notes"
"""First namespace label of episode-scoped working notes (never committed)."""

CommitPolicy = Literal["on_close", "never"]

_Key = tuple[tuple[str, ...], str]
_WORD = re.compile(r"\w+", re.UNICODE)


class _Family:
    """What the members of one fork family committed, and what the store held before."""

    def __init__(self) -> None:
        self.before: dict[_Key, dict[str, Any] | None] = {}


class MemoryView:
    """Copy-on-write overlay of one episode over a store."""

    def __init__(self, store: MemoryStore, *, episode_id: str = "", parent: MemoryView | None = None) -> None:
        self.store = store
        self.episode_id = episode_id
        self._family: _Family = _Family() if parent is None else parent._family
        self._writes: dict[_Key, dict[str, Any] | None] = {} if parent is None else copy.deepcopy(parent._writes)
        self._clock: dict[_Key, float] = {} if parent is None else dict(parent._clock)
        self.closed = False
        self.committed = 0
        """Items written to the store by :meth:`commit`."""

    # -- writes --------------------------------------------------------------------------

    def _check(self, namespace: tuple[str, ...]) -> tuple[str, ...]:
        if self.closed:
            raise ConfigError("this memory view is closed (its episode ended)")
        ns = tuple(namespace)
        if not ns or any(not isinstance(p, str) or not p or "." in p for p in ns):
            raise ConfigError(f"invalid namespace {ns!r}: non-empty labels without '.'")
        return ns

    def put(self, namespace: tuple[str, ...], key: str, value: Mapping[str, Any]) -> None:
        """Write ``value`` in this episode's layer."""
        ns = self._check(namespace)
        self._writes[(ns, key)] = copy.deepcopy(dict(value))
        self._clock[(ns, key)] = self.store._clock()

    def delete(self, namespace: tuple[str, ...], key: str) -> None:
        """Hide an item from this episode (a tombstone until commit)."""
        ns = self._check(namespace)
        self._writes[(ns, key)] = None
        self._clock[(ns, key)] = self.store._clock()

    @property
    def pending(self) -> int:
        """Writes in the overlay (including tombstones and working notes)."""
        return len(self._writes)

    # -- reads ---------------------------------------------------------------------------

    def get(self, namespace: tuple[str, ...], key: str) -> dict[str, Any] | None:
        """The item's value as this episode sees it."""
        ns = tuple(namespace)
        if (ns, key) in self._writes:
            value = self._writes[(ns, key)]
            return None if value is None else copy.deepcopy(value)
        if (ns, key) in self._family.before:
            value = self._family.before[(ns, key)]
            return None if value is None else copy.deepcopy(value)
        item = self.store.get(ns, key)
        return None if item is None else item.value

    def search(self, namespace_prefix: tuple[str, ...], query: str, *, limit: int = 5) -> list[Hit]:
        """Store recall merged with this episode's own writes.

        Overlay items are scored lexically (share of query words they contain) and
        by recency; they have no vector yet (they are not embedded before commit).
        """
        prefix = tuple(namespace_prefix)
        base = self.store.recall(prefix, query, limit=limit + len(self._writes)) if query.strip() else []
        hidden = self._writes.keys() | self._family.before.keys()
        hits = [h for h in base if (h.namespace, h.key) not in hidden]
        hits.extend(self._overlay_hits(prefix, query, self._writes))
        older = {k: v for k, v in self._family.before.items() if k not in self._writes}
        hits.extend(self._overlay_hits(prefix, query, older))
        hits.sort(key=lambda h: (-h.scores.total, -h.updated_at))
        return hits[:limit]

    def _overlay_hits(
        self, prefix: tuple[str, ...], query: str, layer: Mapping[_Key, dict[str, Any] | None]
    ) -> list[Hit]:
        terms = {t.strip('"') for t in (fts_query(query) or "").split(" OR ") if t}
        w = self.store.weights
        out = []
        for (ns, key), value in layer.items():
            if value is None or ns[: len(prefix)] != prefix:
                continue
            words = {x.lower() for x in _WORD.findall(str(value.get("text", "")))}
            lex = len(terms & words) / len(terms) if terms else 0.0
            if terms and lex == 0.0:
                continue
            total = w.lexical * lex + w.recency * 1.0 + w.usefulness * NEUTRAL_USEFULNESS
            at = self._clock.get((ns, key), 0.0)
            scores = ScoreParts(lexical=lex, vector=0.0, recency=1.0, usefulness=NEUTRAL_USEFULNESS, total=total)
            out.append(Hit(namespace=ns, key=key, value=copy.deepcopy(value), created_at=at, updated_at=at,
                           scores=scores))
        return out

    def get_committed(self, namespace: tuple[str, ...], key: str) -> dict[str, Any] | None:
        """The item's value in the store, ignoring this view and its family."""
        item = self.store.get(tuple(namespace), key, refresh_ttl=False)
        return None if item is None else item.value

    # -- lifecycle -------------------------------------------------------------------------

    def fork(self, episode_id: str = "") -> MemoryView:
        """An independent copy: the branch keeps what was written so far."""
        if self.closed:
            raise ConfigError("cannot fork a closed memory view")
        return MemoryView(self.store, episode_id=episode_id or self.episode_id, parent=self)

    def commit(self) -> int:
        """Write the overlay (working notes excepted) to the store; returns items changed."""
        writes = [(ns, key, value) for (ns, key), value in self._writes.items() if ns[0] != WORKING_KIND]
        for ns, key, _ in writes:
            if (ns, key) not in self._family.before:
                self._family.before[(ns, key)] = self.get_committed(ns, key)
        n = self.store.write_many(writes, actor=self.episode_id or "episode") if writes else 0
        self.committed += n
        self._writes.clear()
        self._clock.clear()
        return n

    def close(self, *, commit: bool) -> None:
        """End the view (idempotent): commit it or drop it."""
        if self.closed:
            return
        try:
            if commit:
                self.commit()
        finally:
            self.closed = True
            self._writes.clear()


class MemorySessions:
    """SessionFactory of memory views: one per episode, forked with it."""

    def __init__(self, store: MemoryStore, *, commit: CommitPolicy = "on_close") -> None:
        if commit not in ("on_close", "never"):
            raise ConfigError(f"commit must be 'on_close' or 'never', got {commit!r}")
        self.store = store
        self.commit = commit

    def open(self) -> MemoryView:
        return MemoryView(self.store)

    def fork(self, session: Any) -> MemoryView:
        if not isinstance(session, MemoryView):
            raise ConfigError(f"expected a MemoryView, got {type(session).__name__}")
        return session.fork()

    def close(self, session: Any) -> None:
        if isinstance(session, MemoryView):
            session.close(commit=self.commit == "on_close")
