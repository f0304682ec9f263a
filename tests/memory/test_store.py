"""MemoryStore: recall, namespaces, TTL, history, LangGraph's store API, bad input."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.base import GetOp, InvalidNamespaceError, ListNamespacesOp, MatchCondition, PutOp, SearchOp

from reasonloop.errors import ConfigError
from reasonloop.memory import HashingEmbedder, Memory, MemoryStore, RankWeights, Scope

FACTS = [
    "The staging database is backed up every night at 02:00 UTC.",
    "Invoices over 10000 EUR need a second approver.",
    "The date_diff tool only accepts ISO dates like 2024-03-14.",
    "Alice prefers answers in French.",
    "Timeouts of the search API mean the page size is too large.",
]


def test_recall_returns_what_was_written(store: MemoryStore) -> None:
    for i, fact in enumerate(FACTS):
        store.put(("facts", "team"), f"f{i}", {"text": fact})
    for i, fact in enumerate(FACTS):
        hits = store.recall(("facts",), fact)
        assert hits[0].key == f"f{i}", fact
        assert hits[0].scores.lexical == 1.0 and hits[0].scores.vector == 0.0
    hits = store.recall(("facts",), "when are database backups taken?")
    assert hits[0].key == "f0"
    # Porter stemming: "timeout" finds "Timeouts".
    assert store.recall(("facts",), "search timeout", limit=1)[0].key == "f4"
    assert store.get(("facts", "team"), "f3").value == {"text": FACTS[3]}  # type: ignore[union-attr]


def test_scores_are_explained(store: MemoryStore) -> None:
    store.put(("facts", "x"), "a", {"text": "approver needed for large invoices", "usefulness": 0.9})
    store.put(("facts", "x"), "b", {"text": "large parcels ship separately"})
    hits = store.recall(("facts",), "large invoices approver")
    assert [h.key for h in hits] == ["a", "b"]
    top = hits[0].scores
    w = store.weights
    assert top.total == pytest.approx(w.lexical * top.lexical + w.recency * top.recency + w.usefulness * 0.9)
    assert top.usefulness == 0.9 and hits[1].scores.usefulness == 0.5
    assert hits[0].scores.explain(w).startswith(f"{top.total:.3f} = 0.45*lexical 1.00")
    assert hits[0].as_dict()["scores"]["total"] == round(top.total, 6)


def test_recency_breaks_ties(store: MemoryStore, clock: Any) -> None:
    store.put(("facts", "x"), "old", {"text": "the meeting room is B12"})
    clock.advance(30 * 24 * 3600)
    store.put(("facts", "x"), "new", {"text": "the meeting room is C07"})
    hits = store.recall(("facts",), "meeting room", weights=RankWeights(recency=0.5))
    assert [h.key for h in hits] == ["new", "old"]
    assert hits[0].scores.recency == 1.0 and hits[1].scores.recency == pytest.approx(0.5 ** (30 / 7), rel=1e-6)


def test_namespaces_isolate(tmp_path: Path) -> None:
    with Memory.open(tmp_path / "m.db", scope=Scope(user="alice")) as alice:
        bob = Memory(alice.store, scope=Scope(user="bob"))
        alice.facts.remember("my locker code is 4411")
        bob.facts.remember("my locker code is 9902")
        assert [h.text for h in alice.facts.recall("locker code")] == ["my locker code is 4411"]
        assert [h.text for h in bob.facts.recall("locker code")] == ["my locker code is 9902"]
        both = alice.store.recall(("facts",), "locker code")
        assert len(both) == 2  # a shorter prefix sees both, on purpose
        other_family = Memory(alice.store, scope=Scope(user="alice", family="other"))
        assert other_family.facts.recall("locker code") == []
        # Same key in two namespaces: two items.
        alice.store.put(("a", "x"), "k", {"text": "one"})
        alice.store.put(("a", "y"), "k", {"text": "two"})
        assert alice.store.get(("a", "x"), "k").value["text"] == "one"  # type: ignore[union-attr]
        assert [h.value["text"] for h in alice.store.recall(("a", "y"), "one two")] == ["two"]
        # "a.x" as a prefix must not match the namespace ("a", "xy").
        alice.store.put(("a", "xy"), "k", {"text": "three"})
        assert [h.value["text"] for h in alice.store.recall(("a", "x"), "one three")] == ["one"]


def test_ttl_expiry_refresh_and_sweep(store: MemoryStore, clock: Any) -> None:
    store.put(("lessons", "u"), "short", {"text": "short lived lesson"}, ttl=1.0)
    store.put(("lessons", "u"), "long", {"text": "long lived lesson"}, ttl=60.0)
    store.put(("lessons", "u"), "forever", {"text": "permanent lesson"})
    clock.advance(50)
    assert store.get(("lessons", "u"), "short") is not None  # refreshes: now expires at +110 s
    clock.advance(50)
    assert store.get(("lessons", "u"), "short", refresh_ttl=False) is not None
    clock.advance(15)
    assert store.get(("lessons", "u"), "short") is None
    assert {h.key for h in store.recall(("lessons",), "lesson")} == {"long", "forever"}
    assert store.count(("lessons",)) == 2
    assert ("lessons", "u") in store.list_namespaces()
    assert store.sweep_expired() == 1
    assert store.sweep_expired() == 0
    expired = [h for h in store.history(("lessons", "u"), "short") if h["op"] == "expire"]
    assert len(expired) == 1 and expired[0]["old"] == {"text": "short lived lesson"} and expired[0]["actor"] == "ttl"
    clock.advance(3600)
    assert store.sweep_expired() == 1
    assert [h.key for h in store.recall(("lessons",), "lesson")] == ["forever"]


def test_default_ttl_from_config(tmp_path: Path, clock: Any) -> None:
    with MemoryStore(tmp_path / "t.db", ttl={"default_ttl": 2.0, "refresh_on_read": False}, clock=clock) as s:
        s.put(("n", "x"), "k", {"text": "hello"})
        clock.advance(100)
        assert s.get(("n", "x"), "k") is not None
        clock.advance(21)
        assert s.get(("n", "x"), "k") is None


def test_history_records_every_change(store: MemoryStore) -> None:
    store.write_many([(("facts", "x"), "k", {"text": "v1"})], actor="ep-1")
    store.write_many([(("facts", "x"), "k", {"text": "v2"})], actor="ep-2")
    store.evict(("facts", "x"), "k", reason="evict", actor="prune")
    store.put(("facts", "x"), "k2", {"text": "x"})
    store.delete(("facts", "x"), "k2")
    log = store.history(("facts", "x"))
    assert [(e["op"], e["key"], e["actor"]) for e in log] == [
        ("put", "k", "ep-1"), ("put", "k", "ep-2"), ("evict", "k", "prune"), ("put", "k2", ""), ("delete", "k2", "")
    ]
    assert log[1]["old"] == {"text": "v1"} and log[1]["new"] == {"text": "v2"}
    assert log[2]["old"] == {"text": "v2"} and log[2]["new"] is None
    store.delete(("facts", "x"), "missing")  # deleting nothing changes nothing
    assert len(store.history()) == 5


def test_langgraph_store_api(store: MemoryStore) -> None:
    results = store.batch([
        PutOp(("docs", "u1"), "a", {"text": "quarterly report on sales", "type": "report", "n": 3}),
        PutOp(("docs", "u1"), "b", {"text": "draft about sales targets", "type": "draft", "n": 1}),
        PutOp(("docs", "u2", "v1"), "c", {"text": "unrelated memo", "type": "report", "n": 5}),
        GetOp(("docs", "u1"), "a"),
        SearchOp(("docs",), filter={"type": "report"}, limit=10),
        SearchOp(("docs",), query="sales report", limit=1),
        SearchOp(("docs",), filter={"n": {"$gte": 3}}),
        ListNamespacesOp(match_conditions=(MatchCondition("suffix", ("v1",)),)),
    ])
    assert results[:3] == [None, None, None]
    assert results[3].value["n"] == 3  # type: ignore[union-attr]
    assert {i.key for i in results[4]} == {"a", "c"}  # type: ignore[union-attr]
    assert [i.key for i in results[5]] == ["a"] and results[5][0].score > 0  # type: ignore[index]
    assert {i.key for i in results[6]} == {"a", "c"}  # type: ignore[union-attr]
    assert results[7] == [("docs", "u2", "v1")]
    assert store.list_namespaces(prefix=("docs",), max_depth=2) == [("docs", "u1"), ("docs", "u2")]
    found = asyncio.run(store.asearch(("docs", "u1"), query="targets"))
    assert [i.key for i in found] == ["b"]
    asyncio.run(store.adelete(("docs", "u1"), "b"))
    assert store.get(("docs", "u1"), "b") is None


def test_hybrid_with_hashing_embedder(tmp_path: Path) -> None:
    emb = HashingEmbedder(dim=256)
    with MemoryStore(tmp_path / "h.db", embedder=emb, embed_mode="manual") as s:
        s.put(("facts", "x"), "a", {"text": "reconfiguration of the load balancer"})
        s.put(("facts", "x"), "b", {"text": "the cafeteria opens at noon"})
        s.put(("facts", "x"), "c", {"text": "the cafeteria opens at noon"})
        # Not embedded yet: found lexically only, with no vector score.
        assert s.recall(("facts",), "load balancer")[0].scores.vector == 0.0
        assert s.flush_embeddings() == 3
        assert s._jobs is not None and s._jobs.encoded == 2  # the repeated text was encoded once
        # Misspelt: no word (nor stem) in common with the item, but most trigrams.
        hits = s.recall(("facts",), "reconfigration loadbalancr")
        assert hits[0].key == "a" and hits[0].scores.lexical == 0.0 and hits[0].scores.vector > 0.3
        s.put(("facts", "x"), "a", {"text": "something else entirely"})  # rewritten: its vector is dropped
        assert s.embed_pending() == 1
        assert s.recall(("facts",), "reconfigration loadbalancr")[0].key != "a"


def test_background_embedding(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "bg.db", embedder=HashingEmbedder(dim=64)) as s:
        for i in range(20):
            s.put(("n", "x"), str(i), {"text": f"note number {i}"})
        s.flush_embeddings()  # whatever the thread has not done yet
        rows = s._read("SELECT count(*) FROM vectors")
        assert rows[0][0] == 20


@pytest.mark.parametrize("query", ['NEAR("a" OR *', "\"'); DROP TABLE items; --", "   ", "***", "the of and"])
def test_hostile_or_empty_queries(store: MemoryStore, query: str) -> None:
    store.put(("facts", "x"), "k", {"text": "items table stays"})
    assert isinstance(store.recall(("facts",), query), list)
    assert store.count() == 1


def test_bad_input_is_refused_clearly(store: MemoryStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidNamespaceError):
        store.put(("a.b",), "k", {"text": "x"})
    with pytest.raises(ConfigError, match="limit"):
        store.recall(("a",), "x", limit=0)
    with pytest.raises(ConfigError, match="must not be empty"):
        store.write_many([((), "k", {"text": "x"})])
    with pytest.raises(ConfigError, match=r"Scope\.user"):
        Scope(user="a.b")
    with pytest.raises(ConfigError):
        RankWeights(lexical=0, vector=0, recency=0, usefulness=0)
    assert store.recall(("nothing", "here"), "x") == []
    bad = tmp_path / "not_a_db.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        MemoryStore(bad)
    store.close()
    with pytest.raises(ConfigError, match="closed"):
        store.recall(("a",), "x")


def test_vector_cache_follows_other_connections(tmp_path: Path) -> None:
    emb = HashingEmbedder(dim=128)
    path = tmp_path / "two.db"
    with MemoryStore(path, embedder=emb, embed_mode="manual") as reader, \
            MemoryStore(path, embedder=emb, embed_mode="manual") as writer:
        reader.put(("f", "x"), "a", {"text": "the printer on floor two jams"})
        reader.flush_embeddings()
        assert [h.key for h in reader.recall(("f",), "printer jams")] == ["a"]
        writer.put(("f", "x"), "b", {"text": "the printer on floor three jams too"})
        writer.flush_embeddings()
        hits = reader.recall(("f",), "printer floor three")
        assert hits[0].key == "b" and hits[0].scores.vector > 0.5
        writer.delete(("f", "x"), "a")
        assert [h.key for h in reader.recall(("f",), "printer jams")] == ["b"]
        assert reader._vectors is not None and len(reader._vectors.ids) == 1
