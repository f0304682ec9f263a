"""Client for Search-R1-style retrieval servers (``POST /retrieve``).

The protocol (Search-R1's ``retrieval_server.py``, also served by verl's and
verl-tool's retrievers)::

    POST /retrieve  {"queries": ["q1", ...], "topk": 3, "return_scores": true}
    200             {"result": [[{"document": {"id": "...", "contents": "\\"Title\\"\\ntext"},
                                  "score": 0.83}, ...], ...]}

``contents`` holds the title (often in double quotes) on its first line and the
passage after it. Every field is checked: a malformed answer is an error result
that names what was wrong, never an exception or a silent empty list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from reasonloop.errors import ConfigError
from reasonloop.tools.search.base import BackendBase, SearchFailure, SearchHit
from reasonloop.tools.search.retry import RetryConfig, TransientError, call_with_retries, is_retryable_status

__all__ = ["RetrievalServerBackend", "parse_retrieve_response"]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _split_contents(contents: str) -> tuple[str, str]:
    first, _, rest = contents.partition("\n")
    title = first.strip()
    if len(title) >= 2 and title[0] == title[-1] == '"':
        title = title[1:-1]
    return title, rest.strip()


def _parse_hit(item: Any, where: str) -> SearchHit:
    doc, score = (
        (item.get("document"), item.get("score")) if isinstance(item, dict) and "document" in item else (item, None)
    )
    if not isinstance(doc, dict):
        raise SearchFailure(f"retrieval server answer is malformed: {where} is not a document object")
    contents = doc.get("contents", doc.get("text"))
    if not isinstance(contents, str):
        raise SearchFailure(f"retrieval server answer is malformed: {where} has no string 'contents'")
    title, text = _split_contents(contents)
    if isinstance(doc.get("title"), str):
        title, text = doc["title"], contents
    doc_id = doc.get("id", doc.get("doc_id"))
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
        raise SearchFailure(f"retrieval server answer is malformed: {where} has a non-numeric score")
    return SearchHit(
        id=str(doc_id) if doc_id is not None else f"{where}",
        title=title,
        text=text,
        score=float(score) if score is not None else None,
    )


def parse_retrieve_response(payload: Any, n_queries: int) -> list[list[SearchHit]]:
    """Decode a ``/retrieve`` answer; raise :class:`SearchFailure` naming the problem."""
    if not isinstance(payload, dict) or not isinstance(payload.get("result"), list):
        raise SearchFailure('retrieval server answer is malformed: expected {"result": [[...], ...]}')
    result = payload["result"]
    if len(result) != n_queries:
        raise SearchFailure(f"retrieval server answered {len(result)} result lists for {n_queries} queries")
    out: list[list[SearchHit]] = []
    for qi, items in enumerate(result):
        if not isinstance(items, list):
            raise SearchFailure(f"retrieval server answer is malformed: result[{qi}] is not a list")
        out.append([_parse_hit(item, f"result[{qi}][{i}]") for i, item in enumerate(items)])
    return out


class RetrievalServerBackend(BackendBase):
    """:class:`~reasonloop.tools.search.base.SearchBackend` for a Search-R1 retrieval server.

    Args:
        url: Server base URL (``http://127.0.0.1:8000``) or the full ``.../retrieve`` URL.
        timeout_s: Per-request timeout.
        retry: Retry policy (429, 5xx and timeouts only).
        client: An httpx client to reuse (its transport, proxies, limits); one is made otherwise.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        retry: RetryConfig | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"retrieval server url must start with http:// or https://, got {url!r}")
        if timeout_s <= 0:
            raise ConfigError("timeout_s must be > 0")
        self.url = url if url.rstrip("/").endswith("/retrieve") else url.rstrip("/") + "/retrieve"
        self.name = f"retrieval-server:{self.url}"
        self._timeout = timeout_s
        self._retry = retry or RetryConfig()
        self._client = client or httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def _search(self, query: str, k: int) -> list[SearchHit]:
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int) -> list[list[SearchHit]]:
        """One request for several queries (the server batches them); raises :class:`SearchFailure`."""
        body = {"queries": list(queries), "topk": k, "return_scores": True}
        try:
            payload = call_with_retries(lambda: self._post(body), self._retry)
        except TransientError as exc:
            raise SearchFailure(f"{exc} (gave up after {self._retry.attempts} attempts)") from exc
        return [hits[:k] for hits in parse_retrieve_response(payload, len(queries))]

    def _post(self, body: dict[str, Any]) -> Any:
        try:
            response = self._client.post(self.url, json=body, timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise TransientError(f"retrieval server {self.url} timed out after {self._timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise SearchFailure(f"retrieval server {self.url} is unreachable: {type(exc).__name__}: {exc}") from exc
        if is_retryable_status(response.status_code):
            raise TransientError(
                f"retrieval server {self.url} answered HTTP {response.status_code}", retry_after=_retry_after(response)
            )
        if response.status_code != 200:
            raise SearchFailure(
                f"retrieval server {self.url} answered HTTP {response.status_code}: {response.text[:200]}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise SearchFailure(
                f"retrieval server {self.url} answered something that is not JSON: {response.text[:100]!r}"
            ) from exc
