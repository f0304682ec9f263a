"""CLI functions: list, search, show, export (the CLI module only parses options)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from reasonloop.errors import StoreError
from reasonloop.memory import MemoryStore
from reasonloop.memory.cli import memory_export, memory_list, memory_search, memory_show, render


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "m.db"
    with MemoryStore(p, actor="ep-1") as s:
        s.put(("facts", "alice"), "k1", {"text": "Alice works in the Lyon office"})
        s.put(("facts", "bob"), "k2", {"text": "Bob works remotely"})
        s.put(("facts", "bob"), "k2", {"text": "Bob works in the Oslo office"})
        s.put(("lessons", "bob"), "k3", {"text": "retry the upload with smaller chunks"}, ttl=60)
    return p


def test_list_search_show_export(path: Path) -> None:
    rows = memory_list(path)
    assert [r["key"] for r in rows] == ["k3", "k2", "k1"]
    assert [r["key"] for r in memory_list(path, namespace="facts.bob")] == ["k2"]
    hits = memory_search(path, "who works in an office", namespace="facts")
    assert {h["key"] for h in hits} == {"k1", "k2"} and "lexical" in hits[0]["why"]
    assert "facts.alice/k1" in render(hits) or "facts.bob/k2" in render(hits)
    shown = memory_show(path, "facts.bob", "k2")
    assert shown is not None and shown["live"] and shown["value"]["text"] == "Bob works in the Oslo office"
    assert [(e["op"], e["old"]) for e in shown["history"]] == [("put", None), ("put", {"text": "Bob works remotely"})]
    assert memory_show(path, "facts.bob", "nope") is None and render(None) == "not found"
    out = io.StringIO()
    assert memory_export(path, out) == 3
    assert {json.loads(line)["key"] for line in out.getvalue().splitlines()} == {"k1", "k2", "k3"}
    log = io.StringIO()
    assert memory_export(path, log, namespace="facts.bob", history=True) == 2


def test_missing_store_is_an_error_not_a_new_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no memory store"):
        memory_list(tmp_path / "absent.db")
    assert not (tmp_path / "absent.db").exists()
