"""Local index: corpus reading, build/save/load, manifest, corruption, BM25 ranking."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from reasonloop.errors import UnknownNameError
from reasonloop.tools.search import (
    SearchIndexError,
    SearchStatus,
    build_index,
    load_index,
    read_corpus,
)
from reasonloop.tools.search.bm25 import tokenize, top_k


def _server_module():
    name = "reasonloop_tests_search_server"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("search_server.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("idx")
    corpus = _server_module().write_corpus(root / "corpus.jsonl")
    build_index(corpus, root / "index")
    return root / "index"


def test_read_corpus_reports_bad_lines_with_numbers(tmp_path: Path) -> None:
    read = read_corpus(_server_module().write_corpus(tmp_path / "c.jsonl"))
    assert [d.id for d in read.docs] == ["paris", "berlin", "eiffel", "42", "evil", "danube"]
    assert [(b.line, b.reason.split(" ")[0]) for b in read.bad_lines] == [
        (3, "not"),
        (5, "duplicate"),
        (7, "expected"),
        (9, "'text'"),
    ]
    assert "first on line 1" in read.bad_lines[1].reason
    assert read.n_lines == 11


def test_read_corpus_invalid_utf8_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"id": 1, "text": "ok"}\n\xff\xfe garbage\n')
    read = read_corpus(path)
    assert len(read.docs) == 1 and read.bad_lines[0].line == 2 and "UTF-8" in read.bad_lines[0].reason
    path.write_text("\n\n")
    with pytest.raises(SearchIndexError, match="no valid document"):
        read_corpus(path)
    with pytest.raises(SearchIndexError, match="cannot be read"):
        read_corpus(tmp_path / "missing.jsonl")


def test_manifest_records_corpus_and_sizes(index_dir: Path) -> None:
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest["n_docs"] == 6
    assert manifest["n_bad_lines"] == 4
    assert [b["line"] for b in manifest["bad_lines"]] == [3, 5, 7, 9]
    assert len(manifest["corpus_sha256"]) == 64
    assert manifest["bm25"]["method"] == "lucene"
    assert manifest["versions"]["bm25s"]
    assert manifest["dense_dim"] is None
    index = load_index(index_dir)
    assert index.manifest.n_docs == len(index.docs) == 6
    summary = index.manifest.summary().splitlines()
    assert summary[0].startswith("indexed 6 documents from ") and "(BM25, " in summary[0]
    assert summary[1].startswith("skipped 4 bad line(s) of 11: line 3: not valid JSON")
    assert not index.has_dense


def test_bm25_ranks_the_matching_document_first(index_dir: Path) -> None:
    backend = load_index(index_dir).backend("bm25")
    result = backend.search("capital of Germany", 3)
    assert result.status is SearchStatus.OK
    assert result.hits[0].id == "berlin"
    assert all(h.score is not None and h.score > 0 for h in result.hits)
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    assert backend.search("eiffel tower", 1).hits[0].id == "eiffel"
    assert backend.search("Rome Italy", 5).hits[0].id == "42"


def test_bm25_unknown_words_give_zero_hits_not_noise(index_dir: Path) -> None:
    result = load_index(index_dir).backend("bm25").search("zyzzyva quokka", 5)
    assert result.ok and result.hits == []
    # Only stop words: nothing to match on, still a clean empty answer.
    assert load_index(index_dir).backend("bm25").search("the of and", 5).hits == []


def test_build_refuses_to_overwrite_and_replaces_atomically(tmp_path: Path) -> None:
    corpus = _server_module().write_corpus(tmp_path / "c.jsonl")
    out = tmp_path / "index"
    build_index(corpus, out)
    with pytest.raises(SearchIndexError, match="already exists"):
        build_index(corpus, out)
    corpus.write_text(json.dumps({"id": "only", "text": "a single document about otters"}) + "\n")
    manifest = build_index(corpus, out, overwrite=True)
    assert manifest.n_docs == 1
    assert load_index(out).backend("bm25").search("otters", 3).hits[0].id == "only"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_load_rejects_missing_and_corrupt_indexes(tmp_path: Path, index_dir: Path) -> None:
    with pytest.raises(SearchIndexError, match="no search index"):
        load_index(tmp_path / "nowhere")
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(index_dir, broken)
    (broken / "docs.jsonl").write_text('{"id": "x"}\n')
    with pytest.raises(SearchIndexError, match="does not match the manifest"):
        load_index(broken)
    shutil.rmtree(broken)
    shutil.copytree(index_dir, broken)
    (broken / "manifest.json").write_text("{not json")
    with pytest.raises(SearchIndexError, match="missing or corrupt"):
        load_index(broken)
    shutil.rmtree(broken)
    shutil.copytree(index_dir, broken)
    for f in (broken / "bm25").iterdir():
        f.write_bytes(b"garbage")
    with pytest.raises(SearchIndexError, match="BM25 index"):
        load_index(broken)


def test_unknown_method_lists_valid_ones(index_dir: Path) -> None:
    with pytest.raises(UnknownNameError, match="bm25, dense, hybrid"):
        load_index(index_dir).backend("tfidf")


def test_dense_method_without_embeddings_says_how_to_fix(index_dir: Path) -> None:
    with pytest.raises(SearchIndexError, match="rebuild it with dense=True"):
        load_index(index_dir).backend("dense")


def test_tokenize_drops_stopwords_and_lowercases() -> None:
    assert tokenize("The Capital of FRANCE, Paris!") == ["capital", "france", "paris"]
    assert tokenize("x" * 65 + " ok") == ["ok"]
    assert tokenize("Zürich straße 東京") == ["zürich", "straße", "東京"]


def test_top_k_orders_by_score_then_index_and_skips_zeros() -> None:
    scores = np.array([0.0, 2.0, 1.0, 2.0, 0.5, 0.0], dtype=np.float32)
    assert top_k(scores, 3) == [(1, 2.0), (3, 2.0), (2, 1.0)]
    assert top_k(scores, 10) == [(1, 2.0), (3, 2.0), (2, 1.0), (4, 0.5)]
    assert top_k(np.zeros(4, dtype=np.float32), 2) == []
    # Ties at the cut keep the lowest indices.
    assert top_k(np.array([1.0, 1.0, 1.0, 1.0]), 2) == [(0, 1.0), (1, 1.0)]
