"""Dense and hybrid retrieval with the bundled all-MiniLM-L6-v2 (needs the ``dense`` extra)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonloop.tools.search import SearchIndexError, build_index, dense_unavailable, load_index

REASON = dense_unavailable()


def test_dense_unavailable_names_the_fix_or_is_none() -> None:
    assert REASON is None or "reasonloop[dense]" in REASON


@pytest.mark.slow
@pytest.mark.skipif(REASON is not None, reason=REASON or "")
def test_dense_and_hybrid_find_paraphrases(tmp_path: Path) -> None:
    docs = [
        {"id": "cat", "text": "A small domesticated feline that purrs and chases mice."},
        {"id": "car", "text": "An automobile with four wheels and an internal combustion engine."},
        {"id": "sea", "text": "The ocean covers most of the planet and is full of salt water."},
        {"id": "bread", "text": "Bakers knead dough made of flour, water and yeast before baking it."},
    ]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    manifest = build_index(corpus, tmp_path / "index", dense=True)
    assert (manifest.dense_model, manifest.dense_dim) == ("all-MiniLM-L6-v2", 384)
    index = load_index(tmp_path / "index")
    # No word in common with the "cat" document: BM25 finds nothing, dense does.
    assert index.backend("bm25").search("kitten pet", 2).hits == []
    dense = index.backend("dense").search("kitten pet", 2)
    assert dense.ok and dense.hits[0].id == "cat"
    assert dense.hits[0].score is not None and -1.0 <= dense.hits[0].score <= 1.0
    hybrid = index.backend("hybrid").search("vehicle engine wheels", 2)
    assert hybrid.ok and hybrid.hits[0].id == "car"
    # A corrupt embedding file is reported, not used.
    (tmp_path / "index" / "dense.npy").write_bytes(b"junk")
    with pytest.raises(SearchIndexError, match="dense index"):
        load_index(tmp_path / "index").backend("dense")
