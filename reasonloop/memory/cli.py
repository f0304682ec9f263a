"""What ``reasonloop memory list|search|show|export --store PATH`` does.

Plain functions returning JSON-safe data, plus :func:`render` for the terminal;
the CLI module only parses options. None of them refreshes TTLs or creates a
store: a missing file is a :class:`~reasonloop.errors.StoreError`.

Namespaces are written with dots on the command line: ``lessons.alice`` is
``("lessons", "alice")``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from reasonloop.errors import StoreError
from reasonloop.memory._sql import ns_join, ns_split
from reasonloop.memory.store import MemoryStore

__all__ = ["memory_export", "memory_list", "memory_search", "memory_show", "render"]


def _open(store: str | Path, *, dense: bool = False) -> MemoryStore:
    path = Path(store)
    if not path.is_file():
        raise StoreError(f"no memory store at {path}")
    embedder = None
    if dense:
        from reasonloop.memory.embed import DenseEmbedder

        embedder = DenseEmbedder()
    return MemoryStore(path, embedder=embedder, embed_mode="manual")


def _item(ns: tuple[str, ...], key: str, value: dict[str, Any], updated_at: float, **extra: Any) -> dict[str, Any]:
    return {"namespace": ns_join(ns), "key": key, "text": str(value.get("text", "")), "updated_at": updated_at,
            "value": value, **extra}


def memory_list(store: str | Path, *, namespace: str = "", limit: int = 20) -> list[dict[str, Any]]:
    """Newest items under a namespace prefix (all when empty)."""
    with _open(store) as s:
        return [_item(i.namespace, i.key, i.value, i.updated_at.timestamp())
                for i in s.listing(ns_split(namespace), limit=limit)]


def memory_search(
    store: str | Path, query: str, *, namespace: str = "", limit: int = 5, dense: bool = False
) -> list[dict[str, Any]]:
    """Hybrid recall (BM25 + recency; + vectors with ``dense``), with each hit's scores."""
    with _open(store, dense=dense) as s:
        hits = s.recall(ns_split(namespace), query, limit=limit, refresh_ttl=False)
        return [_item(h.namespace, h.key, h.value, h.updated_at, scores=h.scores.as_dict(),
                      why=h.scores.explain(s.weights)) for h in hits]


def memory_show(store: str | Path, namespace: str, key: str, *, history: int = 20) -> dict[str, Any] | None:
    """One item and its latest ``history`` audit entries (``None`` if it is not there)."""
    with _open(store) as s:
        item = s.get(ns_split(namespace), key, refresh_ttl=False)
        log = s.history(ns_split(namespace), key, limit=100_000)[-history:] if history else []
        if item is None and not log:
            return None
        out: dict[str, Any] = {"namespace": namespace, "key": key, "live": item is not None, "history": log}
        if item is not None:
            out.update(value=item.value, created_at=item.created_at.timestamp(), updated_at=item.updated_at.timestamp())
        return out


def memory_export(store: str | Path, out: TextIO, *, namespace: str = "", history: bool = False) -> int:
    """Write every live item (or, with ``history``, every audit entry) as JSON lines; returns the count."""
    n = 0
    with _open(store) as s:
        if history:
            rows: list[dict[str, Any]] = s.history(limit=10**12)
            prefix = ns_split(namespace)
            rows = [r for r in rows if tuple(r["namespace"][: len(prefix)]) == prefix]
        else:
            rows = [_item(i.namespace, i.key, i.value, i.updated_at.timestamp(),
                          created_at=i.created_at.timestamp()) for i in s.listing(ns_split(namespace), limit=10**12)]
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def render(rows: list[dict[str, Any]] | dict[str, Any] | None) -> str:
    """Terminal text for what the functions above return."""
    if rows is None:
        return "not found"
    if isinstance(rows, dict):
        return json.dumps(rows, ensure_ascii=False, indent=2)
    if not rows:
        return "(no items)"
    lines = []
    for r in rows:
        score = f"  [{r['scores']['total']:.3f}]" if "scores" in r else ""
        text = r["text"].replace("\n", " ")
        lines.append(f"{r['namespace']}/{r['key']}{score}  {text[:100]}")
        if "why" in r:
            lines.append(f"    {r['why']}")
    return "\n".join(lines)
