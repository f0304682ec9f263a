"""Recall with the dense model (the ``dense`` extra): exact and paraphrased queries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reasonloop.memory import DenseEmbedder, MemoryStore
from reasonloop.tools.search.dense import dense_unavailable

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(dense_unavailable() is not None, reason=dense_unavailable() or ""),
]

FACTS = [
    "The staging database is backed up every night at 02:00 UTC.",
    "Invoices over 10000 EUR need a second approver.",
    "Alice prefers answers in French.",
    "The coffee machine on floor 3 is broken.",
    "Our office dog is called Biscuit.",
    "The VPN certificate expires on June 30.",
    "Deployments are frozen during the last week of December.",
    "Bob is allergic to peanuts.",
]
# Paraphrases that share no word (nor stem) with their fact, except a name.
PARAPHRASES = [
    ("When do the nightly snapshots of the test DB happen?", 0),
    ("Who must sign off large bills?", 1),
    ("Which language should replies to Alice be written in?", 2),
    ("Where can't I get an espresso?", 3),
    ("What is the name of the company's pet?", 4),
    ("Until when is the remote access credential valid?", 5),
    ("Can we ship code around Christmas?", 6),
    ("What food must Bob avoid?", 7),
]


def test_dense_recall_exact_and_paraphrased(tmp_path: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with MemoryStore(tmp_path / "dense.db", embedder=DenseEmbedder(), embed_mode="manual") as hybrid, \
            MemoryStore(tmp_path / "bm25.db") as bm25:
        for store in (hybrid, bm25):
            store.write_many([(("facts", "team"), f"f{i}", {"text": t}) for i, t in enumerate(FACTS)])
        assert hybrid.flush_embeddings() == len(FACTS)
        for i, fact in enumerate(FACTS):
            top = hybrid.recall(("facts",), fact, limit=1)[0]
            assert top.key == f"f{i}" and top.scores.vector > 0.99
        hybrid_top1 = [hybrid.recall(("facts",), q, limit=1)[0].key == f"f{i}" for q, i in PARAPHRASES]
        bm25_top1 = [bool(h) and h[0].key == f"f{i}" for q, i in PARAPHRASES if (h := bm25.recall(("facts",), q, limit=1)) or True]
        assert sum(hybrid_top1) >= len(PARAPHRASES) - 1, hybrid_top1
        assert sum(bm25_top1) <= 3, bm25_top1  # the words differ: lexical search alone mostly misses
        hit = hybrid.recall(("facts",), "Who must sign off large bills?", limit=1)[0]
        assert hit.scores.lexical == 0.0 and hit.scores.vector > 0.3
