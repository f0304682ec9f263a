"""Hybrid retrieval by reciprocal rank fusion (RRF).

RRF (Cormack, Clarke and Büttcher, SIGIR 2009) scores a document by its ranks,
not its raw scores, so BM25 scores (unbounded) and cosines (in [-1, 1]) combine
without calibration::

    rrf(d) = sum over rankings r containing d of  1 / (k0 + rank_r(d))

with ranks starting at 1 and ``k0 = 60`` (the paper's constant: it damps the
weight of the very top ranks so one ranker cannot dominate). Each ranker is asked
for ``depth`` candidates (default ``max(k * 4, 20)``) before fusion.
"""

from __future__ import annotations

from collections.abc import Sequence

from reasonloop.errors import ConfigError
from reasonloop.tools.search.base import BackendBase, SearchBackend, SearchFailure, SearchHit

__all__ = ["RRF_K0", "HybridBackend", "reciprocal_rank_fusion"]

RRF_K0 = 60


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], *, k0: int = RRF_K0) -> list[tuple[str, float]]:
    """Fuse ranked id lists into one ranking.

    Args:
        rankings: Each a list of ids, best first (duplicates within one list count once,
            at their best rank).
        k0: Rank offset (> 0).

    Returns:
        ``(id, score)`` pairs, best first; ties break on first appearance.
    """
    if k0 <= 0:
        raise ConfigError("k0 must be > 0")
    scores: dict[str, float] = {}
    for ranking in rankings:
        seen: set[str] = set()
        for rank, doc_id in enumerate(ranking, 1):
            if doc_id in seen:
                continue
            seen.add(doc_id)
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k0 + rank)
    order = {doc_id: i for i, doc_id in enumerate(scores)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


class HybridBackend(BackendBase):
    """Fuses several back ends (e.g. BM25 and dense) with :func:`reciprocal_rank_fusion`.

    A back end that fails is left out of the fusion; only if all fail is the
    search an error.
    """

    def __init__(
        self, backends: Sequence[SearchBackend], *, k0: int = RRF_K0, depth: int | None = None, name: str | None = None
    ) -> None:
        if len(backends) < 2:
            raise ConfigError("HybridBackend needs at least two back ends")
        if depth is not None and depth < 1:
            raise ConfigError("depth must be >= 1")
        if k0 <= 0:
            raise ConfigError("k0 must be > 0")
        self._backends = list(backends)
        self._k0 = k0
        self._depth = depth
        self.name = name or "hybrid(" + ",".join(b.name for b in self._backends) + ")"

    def _search(self, query: str, k: int) -> list[SearchHit]:
        depth = self._depth or max(k * 4, 20)
        rankings: list[list[str]] = []
        bodies: dict[str, SearchHit] = {}
        errors: list[str] = []
        for backend in self._backends:
            result = backend.search(query, min(depth, 100))
            if not result.ok:
                errors.append(f"{backend.name}: {result.error}")
                continue
            rankings.append([h.id for h in result.hits])
            for hit in result.hits:
                bodies.setdefault(hit.id, hit)
        if not rankings:
            raise SearchFailure("every back end failed: " + "; ".join(errors))
        fused = reciprocal_rank_fusion(rankings, k0=self._k0)[:k]
        return [bodies[doc_id].model_copy(update={"score": score}) for doc_id, score in fused]
