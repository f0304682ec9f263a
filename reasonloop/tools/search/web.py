"""Web search through LiteLLM's ``litellm.search`` (SearxNG, Tavily, Serper, Brave).

LiteLLM normalises every provider to ``SearchResponse(results=[SearchResult(title,
url, snippet, date)])``; this module wraps that as a
:class:`~reasonloop.tools.search.base.SearchBackend`, with the project's one
retry policy (429, 5xx and timeouts only) and API keys kept out of every message.
litellm is imported on the first search, never by ``import reasonloop``.

Keys and endpoints come from the arguments or from LiteLLM's environment
variables (``SEARXNG_API_BASE``, ``TAVILY_API_KEY``, ``SERPER_API_KEY``,
``BRAVE_API_KEY``).
"""

from __future__ import annotations

import os
from types import MappingProxyType
from typing import Any

from reasonloop.errors import ConfigError, UnknownNameError
from reasonloop.tools.search.base import BackendBase, SearchFailure, SearchHit
from reasonloop.tools.search.retry import RetryConfig, TransientError, call_with_retries, is_retryable_status

__all__ = ["WEB_PROVIDERS", "LiteLLMSearchBackend"]

WEB_PROVIDERS = MappingProxyType(
    {
        "searxng": "SearxNG (self-hosted; api_base or SEARXNG_API_BASE)",
        "tavily": "Tavily (TAVILY_API_KEY)",
        "serper": "Serper (SERPER_API_KEY)",
        "brave": "Brave Search (BRAVE_API_KEY)",
    }
)
"""Providers this back end accepts, with what each needs."""


def _litellm() -> Any:
    # Without this, importing litellm fetches the model price map over the network.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # LiteLLM prints a "Give Feedback / Get Help" banner to stdout on every failure.
    litellm.suppress_debug_info = True
    return litellm


class LiteLLMSearchBackend(BackendBase):
    """A web search provider behind ``litellm.search``.

    Args:
        provider: One of :data:`WEB_PROVIDERS`.
        api_base: Endpoint override (required for SearxNG unless ``SEARXNG_API_BASE`` is set).
        api_key: Provider key; when ``None`` LiteLLM reads the provider's environment variable.
        timeout_s: Per-request timeout.
        retry: Retry policy.
    """

    def __init__(
        self,
        provider: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 15.0,
        retry: RetryConfig | None = None,
    ) -> None:
        if provider not in WEB_PROVIDERS:
            raise UnknownNameError("web search provider", provider, list(WEB_PROVIDERS))
        if timeout_s <= 0:
            raise ConfigError("timeout_s must be > 0")
        self.provider = provider
        self._api_base = api_base
        self._api_key = api_key
        self._timeout = timeout_s
        self._retry = retry or RetryConfig()
        # The key is never part of the name: the name is stored in caches and logs.
        self.name = f"web:{provider}" + (f":{api_base}" if api_base else "")

    def _scrub(self, text: str) -> str:
        for secret in (self._api_key, os.environ.get(f"{self.provider.upper()}_API_KEY")):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def _search(self, query: str, k: int) -> list[SearchHit]:
        litellm = _litellm()
        try:
            response = call_with_retries(lambda: self._call(litellm, query, k), self._retry)
        except TransientError as exc:
            raise SearchFailure(self._scrub(f"{exc} (gave up after {self._retry.attempts} attempts)")) from exc
        results = getattr(response, "results", None)
        if not isinstance(results, list):
            raise SearchFailure(f"{self.provider} answered without a result list")
        hits: list[SearchHit] = []
        for r in results[:k]:
            url = str(getattr(r, "url", "") or "")
            hits.append(
                SearchHit(
                    id=url or f"{self.provider}-{len(hits) + 1}",
                    title=str(getattr(r, "title", "") or ""),
                    text=str(getattr(r, "snippet", "") or ""),
                    url=url or None,
                )
            )
        return hits

    def _call(self, litellm: Any, query: str, k: int) -> Any:
        kwargs: dict[str, Any] = {
            "query": query,
            "search_provider": self.provider,
            "max_results": k,
            "timeout": self._timeout,
        }
        if self._api_base:
            kwargs["api_base"] = self._api_base
        if self._api_key:
            kwargs["api_key"] = self._api_key
        try:
            return litellm.search(**kwargs)
        except Exception as exc:
            raise self._classify(litellm, exc) from exc

    def _classify(self, litellm: Any, exc: Exception) -> Exception:
        """A :class:`TransientError` for what is worth retrying, a :class:`SearchFailure` otherwise."""
        first_line = (str(exc).strip().splitlines() or [""])[0]
        message = self._scrub(f"{self.provider} search failed: {type(exc).__name__}: {first_line}")[:500]
        if isinstance(exc, litellm.Timeout):
            return TransientError(message)
        status = getattr(exc, "status_code", None)
        # A refused connection is reported with status 500 but is not transient.
        if isinstance(status, int) and is_retryable_status(status) and not isinstance(exc, litellm.APIConnectionError):
            return TransientError(message)
        return SearchFailure(message)
