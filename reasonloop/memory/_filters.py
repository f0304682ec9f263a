"""LangGraph-style value filters (``{"kind": "lesson", "uses": {"$gte": 2}}``) and
the text an item is indexed by."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["index_text", "matches"]

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": operator.eq,
    "$ne": operator.ne,
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
    "$in": lambda a, b: a in b,
    "$nin": lambda a, b: a not in b,
}


def _compare(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, Mapping) and wanted and all(str(k).startswith("$") for k in wanted):
        for name, operand in wanted.items():
            fn = _OPS.get(name)
            if fn is None:
                return False
            try:
                if not fn(actual, operand):
                    return False
            except TypeError:  # e.g. "$gt" between a string and a number: no match
                return False
        return True
    if isinstance(wanted, Mapping):
        return isinstance(actual, Mapping) and all(_compare(actual.get(k), v) for k, v in wanted.items())
    return bool(actual == wanted)


def matches(value: Mapping[str, Any], flt: Mapping[str, Any] | None) -> bool:
    """Whether ``value`` satisfies every condition of ``flt`` (``None`` matches all)."""
    if not flt:
        return True
    return all(_compare(value.get(k), v) for k, v in flt.items())


def _at_path(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def index_text(value: Mapping[str, Any], fields: Sequence[str] | None) -> str:
    """The text of ``value`` that lexical and vector search see.

    ``fields`` are dotted paths (``"text"``, ``"lesson.summary"``); when none of them
    is present the item's string leaves are joined, so every item stays findable.
    """
    if fields:
        parts = [s for f in fields for s in _strings(_at_path(value, f))]
        if parts:
            return "\n".join(parts)
    parts = _strings(dict(value))
    return "\n".join(parts) if parts else json.dumps(value, ensure_ascii=False, default=str)[:2000]
