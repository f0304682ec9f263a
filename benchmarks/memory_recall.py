"""Memory recall: latency at 10k / 100k memories and recall@5 on paraphrases, next to
LangGraph's ``InMemoryStore`` on the same data.

    python benchmarks/memory_recall.py [--sizes 10000 100000] [--queries 100] [--no-dense]

Latency rows (p50 / p95 ms per query, warm; the store is a file on disk):

Memories: 8-20 words drawn Zipf-like from a 20k-word vocabulary, in 10 namespaces;
queries: 2-4 words drawn the same way; results limited to 5.

* ``MemoryStore bm25``: :class:`MemoryStore` without an embedder (FTS5 BM25 + recency).
* ``MemoryStore hybrid``: BM25 + 384-dim vectors (numpy) + recency. The 100k
  memories are embedded with :class:`HashingEmbedder` (384 dims: the same matrix
  shape as all-MiniLM-L6-v2; encoding 100k texts with the dense model takes ~1 h
  on 2 cores). The query embedding is cached, so the row is the store's own cost;
  ``dense query encode`` is the model's per-query cost to add for new queries.
* ``InMemoryStore vector``: LangGraph's in-process store with the same 384-dim
  hashing vectors (``index={"dims": 384, "embed": ...}``): cosine over all items.

Recall@5 (paraphrase set): 40 people x 10 attributes = 400 facts; every fact is
asked once with a paraphrase that shares the person's name and at most one other
content word with it (e.g. fact "Ada's favourite fruit is mango", query "Which
fruit does Ada like best?"). Systems: BM25 only; hybrid with the dense model;
``InMemoryStore`` with the dense model; and both with hashing vectors.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reasonloop.memory import HashingEmbedder, MemoryStore
from reasonloop.memory.embed import Embedder

__all__ = ["main"]

WORDS = ["deploy", "cluster", "invoice", "backup", "report", "ticket", "sprint", "budget", "vendor", "contract", "server", "login", "token", "cache", "schedule", "meeting", "review", "release", "branch", "database", "schema", "index", "query", "latency", "outage", "alert", "pager", "quota", "travel", "expense", "receipt", "laptop", "monitor", "office", "badge", "parking", "lunch", "training", "course", "exam", "certificate"]

PEOPLE = ["Ada", "Bram", "Cleo", "Dara", "Emil", "Fern", "Gus", "Hana", "Ivo", "Juno", "Kai", "Lena", "Milo", "Nia", "Otto", "Pia", "Quin", "Rhea", "Sami", "Tova", "Ugo", "Vera", "Wim", "Xena", "Yuri", "Zoe", "Abel", "Bea", "Cyril", "Dina", "Egon", "Fay", "Gert", "Hugo", "Ines", "Jan", "Kira", "Lars", "Mara", "Noor"]

# (fact template, paraphrased question, values)
ATTRIBUTES: list[tuple[str, str, list[str]]] = [
    ("{p}'s favourite fruit is {v}.", "Which fruit does {p} like best?", ["mango", "kiwi", "plum", "fig", "pear"]),
    ("{p} lives in {v}.", "What is {p}'s home town?", ["Lyon", "Oslo", "Porto", "Graz", "Turin"]),
    ("{p} drives a {v} car.", "What colour is the automobile {p} owns?", ["red", "blue", "green", "black", "white"]),
    ("{p} is allergic to {v}.", "What gives {p} an allergic reaction?", ["peanuts", "pollen", "cats", "dust", "latex"]),
    ("{p} works as a {v}.", "What is {p}'s job?", ["nurse", "pilot", "baker", "lawyer", "chemist"]),
    ("{p} plays the {v} on weekends.", "Which instrument does {p} practise?", ["cello", "drums", "flute", "harp", "oboe"]),
    ("{p}'s phone number ends in {v}.", "What are the last digits to call {p}?", ["4411", "9902", "1234", "5678", "8080"]),
    ("{p} was born in {v}.", "In what year did {p} come into the world?", ["1980", "1991", "1975", "2001", "1969"]),
    ("{p} speaks {v} fluently.", "Which language is {p} good at?", ["Finnish", "Greek", "Korean", "Dutch", "Hindi"]),
    ("{p} is reading a book about {v}.", "What topic is {p}'s current novel on?", ["volcanoes", "chess", "bees", "Rome", "jazz"]),
]


def paraphrase_set(seed: int = 0) -> tuple[list[str], list[str]]:
    """400 facts and one paraphrased question per fact (same index)."""
    rng = random.Random(seed)
    facts, questions = [], []
    for p in PEOPLE:
        for fact, question, values in ATTRIBUTES:
            facts.append(fact.format(p=p, v=rng.choice(values)))
            questions.append(question.format(p=p))
    return facts, questions


def _vocabulary(size: int = 20_000, seed: int = 3) -> tuple[list[str], list[float]]:
    """A fixed word list plus ``size`` pseudo-words, with Zipf weights (1 / rank)."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = list(WORDS) + ["".join(rng.choices(letters, k=rng.randrange(4, 10))) for _ in range(size)]
    return words, [1.0 / (r + 1) for r in range(len(words))]


def synthetic(n: int, seed: int = 1) -> list[str]:
    """``n`` memory texts of 8-20 words drawn Zipf-like from a 20k-word vocabulary."""
    rng = random.Random(seed)
    words, weights = _vocabulary()
    return [" ".join(rng.choices(words, weights, k=rng.randrange(8, 21))) for _ in range(n)]


def synthetic_queries(n: int, seed: int = 7) -> list[str]:
    """2-4 word queries drawn the same way."""
    rng = random.Random(seed)
    words, weights = _vocabulary()
    return [" ".join(rng.choices(words, weights, k=rng.randrange(2, 5))) for _ in range(n)]


def _ms(samples: list[float]) -> str:
    qs = statistics.quantiles(samples, n=20) if len(samples) >= 2 else samples * 19
    return f"{statistics.median(samples) * 1e3:8.2f} {qs[18] * 1e3:8.2f}"


def _timed(fn: Callable[[str], Any], queries: Sequence[str]) -> list[float]:
    fn(queries[0])  # warm caches (vector matrix, query embedding)
    out = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        out.append(time.perf_counter() - t0)
    return out


def _fill(store: MemoryStore, texts: list[str]) -> float:
    t0 = time.perf_counter()
    for start in range(0, len(texts), 2000):
        store.write_many([(("bench", f"u{i % 10}"), f"m{i}", {"text": texts[i]}) for i in range(start, min(start + 2000, len(texts)))])
    return time.perf_counter() - t0


def latency(sizes: list[int], n_queries: int, tmp: Path) -> None:
    from langgraph.store.memory import InMemoryStore

    queries = synthetic_queries(n_queries)
    emb = HashingEmbedder(dim=384)
    print(f"{'latency (ms)':<28}{'n':>8}{'p50':>9}{'p95':>9}   build")
    for n in sizes:
        texts = synthetic(n)
        with MemoryStore(tmp / f"bm25-{n}.db") as s:
            fill = _fill(s, texts)
            print(f"{'MemoryStore bm25':<28}{n:>8}{_ms(_timed(lambda q: s.recall(('bench',), q, limit=5), queries))}"
                  f"   insert {fill:.1f} s")
        with MemoryStore(tmp / f"hyb-{n}.db", embedder=emb, embed_mode="manual") as s:
            fill = _fill(s, texts)
            t0 = time.perf_counter()
            s.flush_embeddings()
            embed_s = time.perf_counter() - t0
            rows = _timed(lambda q: s.recall(("bench",), q, limit=5), queries)
            print(f"{'MemoryStore hybrid':<28}{n:>8}{_ms(rows)}   insert {fill:.1f} s + embed {embed_s:.1f} s")
        mem = InMemoryStore(index={"dims": 384, "embed": lambda xs: emb.embed(xs).tolist()})
        t0 = time.perf_counter()
        for start in range(0, n, 2000):
            from langgraph.store.base import PutOp

            mem.batch([PutOp(("bench", f"u{i % 10}"), f"m{i}", {"text": texts[i]}) for i in range(start, min(start + 2000, n))])
        build = time.perf_counter() - t0
        rows = _timed(lambda q, m=mem: m.search(("bench",), query=q, limit=5), queries[: max(5, n_queries // 5)])
        print(f"{'InMemoryStore vector':<28}{n:>8}{_ms(rows)}   insert+embed {build:.1f} s (no persistence)")


def _recall_at_5(search: Callable[[str], list[str]], questions: list[str]) -> float:
    hits = sum(1 for i, q in enumerate(questions) if f"f{i}" in search(q)[:5])
    return hits / len(questions)


def recall_table(tmp: Path, dense: bool) -> None:
    from langgraph.store.base import PutOp
    from langgraph.store.memory import InMemoryStore

    facts, questions = paraphrase_set()
    embedders: list[tuple[str, Embedder | None]] = [("bm25 only", None), ("hashing-384", HashingEmbedder(dim=384))]
    if dense:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from reasonloop.memory import DenseEmbedder

        embedders.append(("all-MiniLM-L6-v2", DenseEmbedder()))
    print(f"\nrecall@5 on {len(questions)} paraphrased questions over {len(facts)} facts")
    for name, emb in embedders:
        with MemoryStore(tmp / f"para-{name}.db", embedder=emb, embed_mode="manual") as s:
            s.write_many([(("facts", "team"), f"f{i}", {"text": t}) for i, t in enumerate(facts)])
            s.flush_embeddings()
            ours = _recall_at_5(lambda q: [h.key for h in s.recall(("facts",), q, limit=5)], questions)
        line = f"  MemoryStore {'hybrid ' + name if emb else name:<32} {ours:6.3f}"
        if emb is not None:
            mem = InMemoryStore(index={"dims": emb.embed(["x"]).shape[1], "embed": lambda xs, e=emb: e.embed(xs).tolist()})
            mem.batch([PutOp(("facts", "team"), f"f{i}", {"text": t}) for i, t in enumerate(facts)])
            theirs = _recall_at_5(lambda q, m=mem: [i.key for i in m.search(("facts",), query=q, limit=5)], questions)
            line += f"   | InMemoryStore {name:<18} {theirs:6.3f}"
        print(line)
    if dense:
        enc = DenseEmbedder()
        enc.embed(["warm up"])
        t0 = time.perf_counter()
        for q in questions[:50]:
            enc.embed([q])
        print(f"\ndense query encode: {(time.perf_counter() - t0) / 50 * 1e3:.1f} ms per query (batch of 1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--no-dense", action="store_true", help="skip the dense model (no `dense` extra)")
    args = parser.parse_args()
    np.random.seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        latency(args.sizes, args.queries, Path(tmp))
        from reasonloop.tools.search.dense import dense_unavailable

        recall_table(Path(tmp), dense=not args.no_dense and dense_unavailable() is None)


if __name__ == "__main__":
    main()
