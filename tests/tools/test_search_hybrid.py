"""Reciprocal rank fusion: the maths by hand, and the fused back end over real back ends."""

from __future__ import annotations

import pytest

from reasonloop.errors import ConfigError
from reasonloop.tools.search import (
    HybridBackend,
    RetrievalServerBackend,
    RetryConfig,
    SearchStatus,
    reciprocal_rank_fusion,
)
from reasonloop.tools.search.base import BackendBase, SearchHit


def test_rrf_scores_match_the_formula() -> None:
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["b", "c", "d"]], k0=60))
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 62)
    assert fused["d"] == pytest.approx(1 / 63)
    assert [d for d, _ in reciprocal_rank_fusion([["a", "b", "c"], ["b", "c", "d"]])] == ["b", "c", "a", "d"]


def test_rrf_ties_break_on_first_appearance_and_duplicates_count_once() -> None:
    assert [d for d, _ in reciprocal_rank_fusion([["x", "y"], ["y", "x"]])] == ["x", "y"]
    assert dict(reciprocal_rank_fusion([["a", "a", "b"]], k0=1)) == pytest.approx({"a": 1 / 2, "b": 1 / 4})
    assert reciprocal_rank_fusion([]) == []
    with pytest.raises(ConfigError):
        reciprocal_rank_fusion([["a"]], k0=0)


class _Fixed(BackendBase):
    """A back end with a fixed ranking: the real protocol, a trivial ranker."""

    def __init__(self, name: str, ids: list[str]) -> None:
        self.name = name
        self._ids = ids

    def _search(self, query: str, k: int) -> list[SearchHit]:
        return [SearchHit(id=i, text=f"{self.name} {i}") for i in self._ids[:k]]


def test_hybrid_fuses_and_survives_one_failing_backend() -> None:
    hybrid = HybridBackend([_Fixed("lex", ["a", "b", "c"]), _Fixed("sem", ["c", "a", "e"])])
    result = hybrid.search("q", 2)
    assert result.ok and [h.id for h in result.hits] == ["a", "c"]
    assert result.hits[0].score == pytest.approx(1 / 61 + 1 / 62)
    down = RetrievalServerBackend("http://127.0.0.1:9", retry=RetryConfig(attempts=1))
    partial = HybridBackend([_Fixed("lex", ["a", "b"]), down]).search("q", 2)
    assert partial.ok and [h.id for h in partial.hits] == ["a", "b"]
    dead = HybridBackend([down, down]).search("q", 2)
    assert dead.status is SearchStatus.ERROR and "every back end failed" in (dead.error or "")
    with pytest.raises(ConfigError):
        HybridBackend([down])
