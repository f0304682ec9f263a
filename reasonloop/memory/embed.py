"""Embedders for memory: the dense sentence model, and a model-free hashing one.

An :class:`Embedder` maps texts to L2-normalised float32 rows (shape ``(n, dim)``).
The store calls it in batches, off the write path (see
:meth:`reasonloop.memory.store.MemoryStore.embed_pending`), and caches every
vector by the SHA-256 of its text, so a text is never encoded twice.

* :class:`DenseEmbedder`: all-MiniLM-L6-v2 (the ``dense`` extra), semantic: it
  matches paraphrases. Imported on first use (~15 s cold on 2 cores).
* :class:`HashingEmbedder`: character trigrams and words hashed into a fixed
  number of buckets; no model, no import cost. It matches spelling variants and
  shared word pieces, not meaning.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from reasonloop.errors import ConfigError

__all__ = ["DenseEmbedder", "Embedder", "HashingEmbedder", "QueryCache", "dense_embedder_or_none", "text_digest"]


@runtime_checkable
class Embedder(Protocol):
    """Texts to L2-normalised vectors."""

    @property
    def model(self) -> str:
        """Identifier of the model; vectors of different models never mix."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Float32 array of shape ``(len(texts), dim)``, rows L2-normalised."""
        ...


def text_digest(text: str) -> str:
    """Cache key of a text's embedding."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class DenseEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (384 dims), loaded lazily, offline."""

    def __init__(self, *, batch_size: int = 64, device: str = "cpu") -> None:
        from reasonloop.tools.search.dense import DenseEncoder

        self._encoder = DenseEncoder(device=device, batch_size=batch_size)

    @property
    def model(self) -> str:
        return f"st:{self._encoder.model_name}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return self._encoder.encode(list(texts))


def dense_embedder_or_none() -> DenseEmbedder | None:
    """A :class:`DenseEmbedder` when the ``dense`` extra is installed, else ``None``
    (memory then ranks by BM25 and recency only)."""
    from reasonloop.tools.search.dense import dense_unavailable

    return None if dense_unavailable() is not None else DenseEmbedder()


_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Feature hashing of words and character trigrams into ``dim`` buckets.

    Deterministic across processes (BLAKE2b, not Python's salted ``hash``).
    """

    def __init__(self, *, dim: int = 512) -> None:
        if dim < 8:
            raise ConfigError(f"HashingEmbedder.dim must be >= 8, got {dim}")
        self.dim = dim

    @property
    def model(self) -> str:
        return f"hash:{self.dim}"

    def _features(self, text: str) -> list[str]:
        words = [w.lower() for w in _WORD.findall(text)]
        feats = [f"w:{w}" for w in words]
        for w in words:
            padded = f"^{w}$"
            feats.extend(f"c:{padded[i:i + 3]}" for i in range(max(1, len(padded) - 2)))
        return feats

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


class QueryCache:
    """LRU of query embeddings: repeated recalls (same task prompt) skip the encoder."""

    def __init__(self, embedder: Embedder, *, size: int = 1024) -> None:
        self.embedder = embedder
        self.size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, text: str) -> np.ndarray:
        """The embedding of ``text`` (1-D float32)."""
        vec = self._cache.get(text)
        if vec is not None:
            self._cache.move_to_end(text)
            self.hits += 1
            return vec
        self.misses += 1
        vec = np.asarray(self.embedder.embed([text])[0], dtype=np.float32)
        self._cache[text] = vec
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return vec

    def stats(self) -> dict[str, Any]:
        return {"hits": self.hits, "misses": self.misses, "size": len(self._cache)}
