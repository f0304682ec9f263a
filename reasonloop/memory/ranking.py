"""Hybrid ranking of memories: lexical + vector + recency (+ usefulness), explained.

Pure functions over plain numbers: the store gathers candidates (FTS5 BM25 hits and
nearest vectors), these functions turn their raw signals into one score per item
and keep every component, so a recall can say *why* an item came first.

    total = w_lexical * lexical + w_vector * vector + w_recency * recency + w_usefulness * usefulness

* ``lexical``: BM25 divided by the best BM25 among the candidates (0..1).
* ``vector``: cosine similarity of L2-normalised embeddings, clipped at 0 (0..1).
* ``recency``: ``0.5 ** (age / half_life)`` of the last update (0..1).
* ``usefulness``: the item's own ``usefulness`` value (lessons), else neutral 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reasonloop.errors import ConfigError

__all__ = ["NEUTRAL_USEFULNESS", "RankWeights", "ScoreParts", "combine", "normalize_lexical", "recency"]

NEUTRAL_USEFULNESS = 0.5
"""Usefulness of items that carry none (facts, notes): neither favoured nor penalised."""


@dataclass(frozen=True, kw_only=True)
class RankWeights:
    """How much each signal counts in the total score."""

    lexical: float = 0.45
    """Weight of the normalised BM25 score."""
    vector: float = 0.45
    """Weight of the cosine similarity (ignored when the store has no embedder)."""
    recency: float = 0.05
    """Weight of the recency decay."""
    usefulness: float = 0.05
    """Weight of a lesson's usefulness estimate."""
    half_life_s: float = 7 * 24 * 3600.0
    """Age at which the recency signal halves, in seconds."""

    def __post_init__(self) -> None:
        for name in ("lexical", "vector", "recency", "usefulness"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f"RankWeights.{name} must be a finite number >= 0, got {value!r}")
        if self.lexical + self.vector + self.recency + self.usefulness <= 0:
            raise ConfigError("RankWeights: at least one weight must be > 0")
        if not (self.half_life_s > 0 and math.isfinite(self.half_life_s)):
            raise ConfigError(f"RankWeights.half_life_s must be > 0, got {self.half_life_s!r}")


@dataclass(frozen=True, kw_only=True)
class ScoreParts:
    """One item's score, with every component that went into it."""

    lexical: float
    vector: float
    recency: float
    usefulness: float
    total: float

    def as_dict(self) -> dict[str, float]:
        return {
            "lexical": round(self.lexical, 6),
            "vector": round(self.vector, 6),
            "recency": round(self.recency, 6),
            "usefulness": round(self.usefulness, 6),
            "total": round(self.total, 6),
        }

    def explain(self, weights: RankWeights) -> str:
        """A one-line account of the total, e.g. ``0.45*lex 1.00 + 0.45*vec 0.62 + ...``."""
        return (
            f"{self.total:.3f} = {weights.lexical:g}*lexical {self.lexical:.2f}"
            f" + {weights.vector:g}*vector {self.vector:.2f}"
            f" + {weights.recency:g}*recency {self.recency:.2f}"
            f" + {weights.usefulness:g}*usefulness {self.usefulness:.2f}"
        )


def normalize_lexical(raw: Mapping[int, float]) -> dict[int, float]:
    """BM25 scores (higher is better) scaled so the best candidate gets 1.0."""
    if not raw:
        return {}
    best = max(raw.values())
    if best <= 0:
        return dict.fromkeys(raw, 0.0)
    return {k: max(0.0, v) / best for k, v in raw.items()}


def recency(age_s: float, half_life_s: float) -> float:
    """Exponential decay of an item's age: 1.0 now, 0.5 after one half-life."""
    return float(0.5 ** (max(0.0, age_s) / half_life_s))


def combine(
    ids: Sequence[int],
    *,
    lexical: Mapping[int, float],
    vector: Mapping[int, float],
    ages_s: Mapping[int, float],
    usefulness: Mapping[int, float],
    weights: RankWeights,
    use_vector: bool,
) -> dict[int, ScoreParts]:
    """Score every candidate id; missing signals count as 0 (usefulness as neutral).

    Args:
        ids: Candidate item ids.
        lexical: Normalised lexical scores (see :func:`normalize_lexical`).
        vector: Cosine similarities.
        ages_s: Seconds since each item's last update.
        usefulness: Usefulness estimates in [0, 1], for the items that have one.
        weights: The weights of the signals.
        use_vector: False when no embedder scored the query: the vector weight is dropped.

    Returns:
        ``{id: ScoreParts}``.
    """
    w_vec = weights.vector if use_vector else 0.0
    out: dict[int, ScoreParts] = {}
    for i in ids:
        lex = lexical.get(i, 0.0)
        vec = max(0.0, vector.get(i, 0.0))
        rec = recency(ages_s.get(i, 0.0), weights.half_life_s)
        use = min(1.0, max(0.0, usefulness.get(i, NEUTRAL_USEFULNESS)))
        total = weights.lexical * lex + w_vec * vec + weights.recency * rec + weights.usefulness * use
        out[i] = ScoreParts(lexical=lex, vector=vec, recency=rec, usefulness=use, total=total)
    return out
