"""BM25 query latency on a generated 100k-document corpus, next to plain-Python anchors.

    python benchmarks/search_latency.py [--docs 100000] [--queries 300] [--seed 0]

The corpus is generated (seeded): words drawn from a Zipf-like distribution over
a 30k-word vocabulary, 20-80 words per document; queries are 2-4 words drawn the
same way. Rows:

* ``search backend``: the full ``BM25Backend.search`` path (validation, scoring,
  top-k, hit objects) over an index built by ``build_index`` and loaded back;
* ``bm25s scoring only``: the index's ``top_k`` without the result objects;
* ``python inverted index``: the same BM25 (Lucene idf, k1=1.5, b=0.75) from a
  dict of postings, in pure Python: what one writes without a library;
* ``python full scan``: the same scores computed document by document: the naive
  anchor every other row is compared to (fewer queries: it is slow).

All rows must agree on the top document; the script checks it. Target: p50 of
``search backend`` under 5 ms.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from reasonloop.tools.search import build_index, load_index
from reasonloop.tools.search.bm25 import tokenize

__all__ = ["main"]

K1, B, K = 1.5, 0.75, 10


def _vocab(n: int, rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(4, 9))))
    return sorted(words)


def _zipf_sampler(vocab: list[str], rng: random.Random) -> Callable[[int], list[str]]:
    cum = list(itertools.accumulate(1.0 / (r + 1) ** 1.05 for r in range(len(vocab))))
    return lambda n: rng.choices(vocab, cum_weights=cum, k=n)


def _corpus(n_docs: int, seed: int) -> tuple[list[dict[str, str]], list[str]]:
    rng = random.Random(seed)
    vocab = _vocab(30_000, rng)
    draw = _zipf_sampler(vocab, rng)
    docs = [{"id": f"d{i}", "title": "", "text": " ".join(draw(rng.randint(20, 80)))} for i in range(n_docs)]
    # Queries skip the 200 most frequent words, like real queries skip stop words.
    rare = _zipf_sampler(vocab[200:], rng)
    queries = [" ".join(rare(rng.randint(2, 4))) for _ in range(1000)]
    return docs, queries


class _PythonBM25:
    """BM25 (Lucene variant) in plain Python: postings dicts, or a full scan."""

    def __init__(self, docs: list[list[str]]) -> None:
        self.tfs = [Counter(d) for d in docs]
        self.lengths = [len(d) for d in docs]
        self.avgdl = sum(self.lengths) / len(docs)
        self.postings: dict[str, list[tuple[int, int]]] = {}
        for i, tf in enumerate(self.tfs):
            for term, c in tf.items():
                self.postings.setdefault(term, []).append((i, c))
        n = len(docs)
        self.idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self.postings.items()}

    def _weight(self, term: str, tf: int, dl: int) -> float:
        return self.idf[term] * tf / (tf + K1 * (1 - B + B * dl / self.avgdl))

    def inverted(self, query: str) -> list[int]:
        """Top-K document indices, from the postings of the query terms only."""
        scores: dict[int, float] = {}
        for term in tokenize(query):
            for doc, tf in self.postings.get(term, ()):
                scores[doc] = scores.get(doc, 0.0) + self._weight(term, tf, self.lengths[doc])
        return sorted(scores, key=lambda d: (-scores[d], d))[:K]

    def scan(self, query: str) -> list[int]:
        """Top-K document indices, scoring every document."""
        terms = [t for t in tokenize(query) if t in self.idf]
        scores = []
        for doc, tf in enumerate(self.tfs):
            s = sum(self._weight(t, tf[t], self.lengths[doc]) for t in terms if t in tf)
            if s > 0:
                scores.append((-s, doc))
        scores.sort()
        return [d for _, d in scores[:K]]


def _time(fn: Callable[[str], object], queries: list[str]) -> tuple[list[float], list[object]]:
    times, outs = [], []
    for q in queries:
        t0 = time.perf_counter()
        outs.append(fn(q))
        times.append((time.perf_counter() - t0) * 1000)
    return times, outs


def _row(name: str, times: list[float], anchor_p50: float | None) -> str:
    p50 = statistics.median(times)
    p95 = statistics.quantiles(times, n=20)[-1] if len(times) >= 20 else max(times)
    ratio = f"{anchor_p50 / p50:9.0f}x" if anchor_p50 else "   anchor"
    return f"{name:<24}{len(times):>8}{p50:>10.3f}{p95:>10.3f}{ratio}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--scan-queries", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    docs, queries = _corpus(args.docs, args.seed)
    queries = queries[: args.queries]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
        t0 = time.perf_counter()
        build_index(corpus, Path(tmp) / "index")
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        index = load_index(Path(tmp) / "index")
        load_s = time.perf_counter() - t0
    backend = index.backend("bm25")
    for q in queries[:20]:  # warm caches (first-touch of the sparse arrays)
        backend.search(q, K)

    search_t, search_out = _time(lambda q: [h.id for h in backend.search(q, K).hits], queries)
    score_t, _ = _time(lambda q: index.bm25.top_k(q, K), queries)
    t0 = time.perf_counter()
    plain = _PythonBM25([tokenize(d["text"]) for d in docs])
    plain_build_s = time.perf_counter() - t0
    inv_t, inv_out = _time(plain.inverted, queries)
    scan_t, scan_out = _time(plain.scan, queries[: args.scan_queries])

    inv_ids = [[docs[d]["id"] for d in out] for out in inv_out]  # type: ignore[attr-defined]
    agree = sum(1 for s, i in zip(search_out, inv_ids, strict=True) if s[:1] == i[:1])  # type: ignore[index]
    scan_agree = sum(1 for i, s in zip(inv_out, scan_out, strict=False) if i == s)
    print(f"corpus: {args.docs} docs, {index.bm25.vocab_size} terms; seed {args.seed}")
    print(f"build_index {build_s:.1f} s, load_index {load_s:.2f} s; python postings build {plain_build_s:.1f} s")
    print(f"{'method':<24}{'queries':>8}{'p50 ms':>10}{'p95 ms':>10}{'vs scan':>10}")
    anchor = statistics.median(scan_t)
    print(_row("search backend", search_t, anchor))
    print(_row("bm25s scoring only", score_t, anchor))
    print(_row("python inverted index", inv_t, anchor))
    print(_row("python full scan", scan_t, None))
    print(
        f"top-1 agreement backend vs python: {agree}/{len(queries)}; python scan == inverted: {scan_agree}/{len(scan_t)}"
    )
    p50 = statistics.median(search_t)
    print(f"target p50 < 5 ms: {'met' if p50 < 5 else 'NOT met'} ({p50:.3f} ms)")


if __name__ == "__main__":
    main()
