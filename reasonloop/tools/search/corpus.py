"""Read a JSONL corpus, keeping the good lines and reporting the bad ones."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from reasonloop.tools.search.base import SearchHit, SearchIndexError

__all__ = ["BadLine", "CorpusRead", "read_corpus"]


class BadLine(BaseModel):
    """A corpus line that was skipped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line: int
    """1-based line number in the corpus file."""
    reason: str


@dataclass(kw_only=True)
class CorpusRead:
    """The outcome of reading a corpus."""

    docs: list[SearchHit] = field(default_factory=list)
    """Accepted documents, in file order."""
    bad_lines: list[BadLine] = field(default_factory=list)
    n_lines: int = 0
    """Lines in the file, blank ones included."""


def _parse_doc(raw: bytes) -> SearchHit | str:
    """A document, or the reason the line is bad."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 (byte {exc.start})"
    try:
        obj: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    doc_id = obj.get("id")
    if isinstance(doc_id, bool) or not isinstance(doc_id, str | int) or str(doc_id).strip() == "":
        return "'id' must be a non-empty string or an integer"
    body = obj.get("text", obj.get("contents"))
    if not isinstance(body, str) or not body.strip():
        return "'text' must be a non-empty string"
    title = obj.get("title", "")
    if title is None:
        title = ""
    if not isinstance(title, str):
        return "'title' must be a string"
    if "\x00" in body or "\x00" in title:
        return "contains a NUL character"
    return SearchHit(id=str(doc_id), title=title, text=body)


def read_corpus(path: str | Path) -> CorpusRead:
    """Read ``{"id", "title", "text"}`` lines; skip and report bad ones.

    Blank lines are ignored. A duplicate id is a bad line (the first one is kept).

    Raises:
        SearchIndexError: The file cannot be read or holds no valid document.
    """
    src = Path(path)
    out = CorpusRead()
    first_seen: dict[str, int] = {}
    try:
        with src.open("rb") as f:
            for lineno, raw in enumerate(f, 1):
                out.n_lines = lineno
                if not raw.strip():
                    continue
                parsed = _parse_doc(raw)
                if isinstance(parsed, str):
                    out.bad_lines.append(BadLine(line=lineno, reason=parsed))
                elif parsed.id in first_seen:
                    out.bad_lines.append(
                        BadLine(
                            line=lineno, reason=f"duplicate id {parsed.id!r} (first on line {first_seen[parsed.id]})"
                        )
                    )
                else:
                    first_seen[parsed.id] = lineno
                    out.docs.append(parsed)
    except OSError as exc:
        raise SearchIndexError(f"corpus {src} cannot be read: {exc.strerror or exc}") from exc
    if not out.docs:
        detail = "; ".join(f"line {b.line}: {b.reason}" for b in out.bad_lines[:5])
        raise SearchIndexError(
            f"corpus {src} holds no valid document" + (f" ({detail})" if detail else " (it is empty)")
        )
    return out
