"""Persistent query cache: reproducible answers, first answer wins, frozen mode makes no requests."""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path

import pytest

from reasonloop.tools.search import (
    CachedBackend,
    QueryCache,
    RetrievalServerBackend,
    RetryConfig,
    SearchHit,
    SearchIndexError,
    SearchStatus,
)


def _server_module():
    name = "reasonloop_tests_search_server"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("search_server.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture()
def server():
    with _server_module().SearchTestServer() as srv:
        yield srv


def _backend(url: str) -> RetrievalServerBackend:
    return RetrievalServerBackend(url, retry=RetryConfig(attempts=1))


def test_second_search_is_served_from_the_cache(tmp_path: Path, server) -> None:
    cached = CachedBackend(_backend(server.url), QueryCache(tmp_path / "c.sqlite"))
    first = cached.search("capital France", 2)
    assert first.ok and not first.cached and [h.id for h in first.hits] == ["r1", "r2"]
    second = cached.search("  capital   France ", 2)  # same query after whitespace normalisation
    assert second.cached and second.hits == first.hits
    assert len(server.requests) == 1
    # k is part of the key.
    assert not cached.search("capital France", 1).cached
    assert len(server.requests) == 2


def test_cache_survives_reopening_and_frozen_mode_never_calls_out(tmp_path: Path, server) -> None:
    path = tmp_path / "c.sqlite"
    warm = CachedBackend(_backend(server.url), QueryCache(path))
    answer = warm.search("capital Germany", 3)
    server.requests.clear()
    frozen = CachedBackend(_backend(server.url), QueryCache(path), frozen=True)
    replay = frozen.search("capital Germany", 3)
    assert replay.cached and replay.hits == answer.hits
    miss = frozen.search("something never asked", 3)
    assert miss.status is SearchStatus.NOT_CACHED and "frozen" in (miss.error or "")
    assert server.requests == []


def test_errors_are_not_cached(tmp_path: Path, server) -> None:
    cached = CachedBackend(_backend(server.url), QueryCache(tmp_path / "c.sqlite"))
    server.mode = "error500"
    assert cached.search("capital", 2).status is SearchStatus.ERROR
    server.mode = "ok"
    again = cached.search("capital", 2)
    assert again.ok and not again.cached and again.hits


def test_first_stored_answer_wins(tmp_path: Path) -> None:
    cache = QueryCache(tmp_path / "c.sqlite")
    a = [SearchHit(id="a", text="first")]
    b = [SearchHit(id="b", text="second")]
    assert cache.put("web:x", "q", 3, a) == a
    assert cache.put("web:x", "q", 3, b) == a
    assert QueryCache(tmp_path / "c.sqlite").get("web:x", "q", 3) == a
    assert len(cache) == 1


def test_concurrent_writers_agree(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    caches = [QueryCache(path) for _ in range(4)]
    stored: list[tuple[str, str]] = []

    def worker(i: int) -> None:
        for j in range(20):
            returned = caches[i].put("b", f"q{j}", 1, [SearchHit(id=f"w{i}", text="t")])
            stored.append((f"q{j}", returned[0].id))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reader = QueryCache(path)
    final = {}
    for j in range(20):
        hits = reader.get("b", f"q{j}", 1)
        assert hits is not None and len(hits) == 1
        final[f"q{j}"] = hits[0].id
    # Every put, winner or loser of the race, returned what ended up stored for its key.
    assert len(stored) == 80 and all(final[key] == doc_id for key, doc_id in stored)
    assert len(reader) == 20


def test_unopenable_cache_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "c.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SearchIndexError, match="cannot be opened"):
        QueryCache(bad)
