"""Remote back ends against a real loopback server: Search-R1 /retrieve client and LiteLLM (SearxNG)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from reasonloop.errors import ConfigError, UnknownNameError
from reasonloop.tools.search import LiteLLMSearchBackend, RetrievalServerBackend, RetryConfig, SearchStatus
from reasonloop.tools.search.base import SearchFailure
from reasonloop.tools.search.retrieval_server import parse_retrieve_response

FAST = RetryConfig(attempts=3, initial_wait_s=0.01, max_wait_s=0.05)


def _server_module():
    name = "reasonloop_tests_search_server"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("search_server.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture()
def server():
    with _server_module().SearchTestServer() as srv:
        yield srv


def test_retrieve_client_speaks_the_search_r1_protocol(server) -> None:
    backend = RetrievalServerBackend(server.url, retry=FAST)
    result = backend.search("capital of France", 2)
    assert result.ok
    assert [(h.id, h.title, h.score) for h in result.hits] == [("r1", "Paris", 3.0), ("r2", "Berlin", 2.0)]
    assert result.hits[0].text == "Paris is the capital and largest city of France."
    path, body = server.requests[0]
    assert path == "/retrieve"
    assert body == {"queries": ["capital of France"], "topk": 2, "return_scores": True}
    batch = backend.search_many(["Germany", "Italy"], 1)
    assert [[h.id for h in hits] for hits in batch] == [["r2"], ["r4"]]


@pytest.mark.parametrize("mode", ["flaky", "rate_limited"])
def test_retrieve_retries_transient_failures(server, mode: str) -> None:
    server.mode, server.fail_first = mode, 2
    result = RetrievalServerBackend(server.url, retry=FAST).search("capital", 2)
    assert result.ok and result.hits
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    ("mode", "attempts", "needle"),
    [
        ("error500", 3, "HTTP 500 (gave up after 3 attempts)"),
        ("bad_request", 1, "HTTP 400"),
        ("malformed", 1, "not JSON"),
        ("wrong_shape", 1, "malformed"),
    ],
)
def test_retrieve_failures_are_error_results(server, mode: str, attempts: int, needle: str) -> None:
    server.mode = mode
    result = RetrievalServerBackend(server.url, retry=FAST).search("capital", 2)
    assert result.status is SearchStatus.ERROR and needle in (result.error or "")
    assert len(server.requests) == attempts


def test_retrieve_timeout_is_retried_then_reported(server) -> None:
    server.mode, server.delay_s = "slow", 0.5
    result = RetrievalServerBackend(server.url, timeout_s=0.1, retry=RetryConfig(attempts=2, initial_wait_s=0)).search(
        "x", 1
    )
    assert result.status is SearchStatus.ERROR and "timed out" in (result.error or "")
    assert len(server.requests) == 2


def test_retrieve_server_down_fails_once_without_retrying() -> None:
    result = RetrievalServerBackend("http://127.0.0.1:9", retry=FAST).search("x", 1)
    assert result.status is SearchStatus.ERROR and "unreachable" in (result.error or "")


def test_parse_retrieve_response_accepts_plain_documents_and_rejects_garbage() -> None:
    plain = {"result": [[{"id": "7", "contents": '"T"\nbody'}]]}
    hits = parse_retrieve_response(plain, 1)[0]
    assert (hits[0].id, hits[0].title, hits[0].text, hits[0].score) == ("7", "T", "body", None)
    for bad in [
        None,
        [],
        {"result": [[1]]},
        {"result": [[{"document": {"id": 1}}]]},
        {"result": [[{"document": {"contents": "x"}, "score": "high"}]]},
    ]:
        with pytest.raises(SearchFailure):
            parse_retrieve_response(bad, 1)
    with pytest.raises(SearchFailure, match="2 result lists for 1"):
        parse_retrieve_response({"result": [[], []]}, 1)


def test_bad_configuration_is_refused_early() -> None:
    with pytest.raises(ConfigError):
        RetrievalServerBackend("ftp://x")
    with pytest.raises(UnknownNameError, match="brave, searxng, serper, tavily"):
        LiteLLMSearchBackend("google")


def test_litellm_searxng_backend(server, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = LiteLLMSearchBackend("searxng", api_base=server.url, retry=FAST)
    result = backend.search("capital Italy", 2)
    assert result.ok, result.error
    assert [h.id for h in result.hits] == ["https://example.org/r4", "https://example.org/r1"]
    assert result.hits[0].title == "Rome" and result.hits[0].url == result.hits[0].id
    path, params = server.requests[0]
    assert path == "/search" and params["q"] == "capital Italy" and params["format"] == "json"

    server.requests.clear()
    server.mode = "error500"
    failed = backend.search("capital", 2)
    assert failed.status is SearchStatus.ERROR and "gave up after 3 attempts" in (failed.error or "")
    assert len(server.requests) == 3

    server.requests.clear()
    server.mode = "bad_request"
    assert backend.search("capital", 2).status is SearchStatus.ERROR
    assert len(server.requests) == 1

    secret = "sk-test-secret-1234"
    down = LiteLLMSearchBackend("searxng", api_base="http://127.0.0.1:9", api_key=secret, retry=FAST)
    result = down.search("x", 1)
    assert result.status is SearchStatus.ERROR and "Connection refused" in (result.error or "")
    assert secret not in (result.error or "") and secret not in down.name
