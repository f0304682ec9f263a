"""The search tool end to end, and the bad-input suite: every case is a typed result, none crashes."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from reasonloop.errors import ConfigError
from reasonloop.policy.parsing import parse_tool_calls
from reasonloop.tools.base import Toolset
from reasonloop.tools.search import (
    RetrievalServerBackend,
    RetryConfig,
    SearchToolConfig,
    build_index,
    search_tool,
)
from reasonloop.trajectory.schema import ToolCall, ToolResult, ToolStatus

FAST = RetryConfig(attempts=2, initial_wait_s=0.01, max_wait_s=0.02)


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
    root = tmp_path_factory.mktemp("tool")
    build_index(_server_module().write_corpus(root / "corpus.jsonl"), root / "index")
    return root / "index"


@pytest.fixture(scope="module")
def server():
    with _server_module().SearchTestServer() as srv:
        yield srv


def _call(tool: Any, arguments: Any) -> ToolResult:
    return asyncio.run(tool(arguments))


def test_tool_schema_and_tag_call_round_trip(index_dir: Path) -> None:
    tool = search_tool(index_dir=index_dir)
    spec = tool.spec
    assert spec.name == "search" and spec.parameters["required"] == ["query"]
    assert spec.parameters["properties"]["k"]["default"] == 3
    # A model writing <search>...</search> fills the query parameter.
    calls, errors = parse_tool_calls("<search>Eiffel tower</search>", [spec], "tags")
    assert errors == [] and calls[0].arguments == {"query": "Eiffel tower"}
    result = asyncio.run(Toolset([tool]).open().call(calls[0]))
    assert result.status is ToolStatus.OK
    assert "[1] (source: eiffel)" in result.output
    assert result.data is not None and result.data["hits"][0]["id"] == "eiffel"


def test_hostile_document_is_rendered_inert(index_dir: Path) -> None:
    result = _call(search_tool(index_dir=index_dir), {"query": "Danube river facts", "k": 2})
    assert result.ok and result.data is not None
    assert [h["id"] for h in result.data["hits"]] == ["evil", "danube"]
    for fmt in ("tags", "json"):
        assert parse_tool_calls(result.output, ["python", "search", "tool_call"], fmt) == ([], [])
    assert "<|im_start|>" not in result.output and "</tool_response>" not in result.output
    assert result.output.splitlines()[-1] == "===== END SEARCH RESULTS ====="


def test_tool_over_retrieval_server_with_frozen_cache(tmp_path: Path, server) -> None:
    cache = tmp_path / "cache.sqlite"
    live = search_tool(backend=RetrievalServerBackend(server.url, retry=FAST), cache_path=cache)
    first = _call(live, {"query": "capital Germany", "k": 1})
    assert first.ok and first.data is not None and first.data["hits"][0]["id"] == "r2"
    server.requests.clear()
    frozen = search_tool(backend=RetrievalServerBackend(server.url, retry=FAST), cache_path=cache, frozen=True)
    replay = _call(frozen, {"query": "capital Germany", "k": 1})
    assert replay.ok and replay.output == first.output and replay.data is not None and replay.data["cached"]
    miss = _call(frozen, {"query": "capital Italy", "k": 1})
    assert miss.status is ToolStatus.ERROR and "frozen cache" in (miss.error or "")
    assert server.requests == []
    # The cache key names the back end: the same query to another server is a miss.
    other = search_tool(backend=RetrievalServerBackend("http://127.0.0.1:9", retry=FAST), cache_path=cache, frozen=True)
    assert _call(other, {"query": "capital Germany", "k": 1}).status is ToolStatus.ERROR


def test_factory_rejects_misuse(index_dir: Path) -> None:
    with pytest.raises(ConfigError):
        search_tool()
    with pytest.raises(ConfigError):
        search_tool(index_dir=index_dir, backend=RetrievalServerBackend("http://x"))
    with pytest.raises(ConfigError):
        search_tool(index_dir=index_dir, frozen=True)
    with pytest.raises(ConfigError):
        SearchToolConfig(default_k=20, max_k=10)


def _corrupt_copy(index_dir: Path, tmp: Path) -> Path:
    broken = tmp / "corrupt"
    if not broken.exists():
        shutil.copytree(index_dir, broken)
        (broken / "manifest.json").write_text('{"format_version": 1, "n_docs": "many"}')
    return broken


# (case id, how to build the tool, arguments, expected status, words the message must contain)
BAD_INPUTS: list[tuple[str, str, Any, ToolStatus, str]] = [
    ("empty query", "index", {"query": ""}, ToolStatus.INVALID_ARGUMENTS, "empty"),
    ("blank query", "index", {"query": " \n\t "}, ToolStatus.INVALID_ARGUMENTS, "empty"),
    ("huge query", "index", {"query": "word " * 10_000}, ToolStatus.INVALID_ARGUMENTS, "limit is 1000"),
    ("query is a number", "index", {"query": 42}, ToolStatus.INVALID_ARGUMENTS, "valid string"),
    ("query is a list", "index", {"query": ["a", "b"]}, ToolStatus.INVALID_ARGUMENTS, "valid string"),
    ("query is null", "index", {"query": None}, ToolStatus.INVALID_ARGUMENTS, "valid string"),
    ("missing query", "index", {}, ToolStatus.INVALID_ARGUMENTS, "Field required"),
    ("unknown argument", "index", {"query": "x", "top": 3}, ToolStatus.INVALID_ARGUMENTS, "top"),
    ("arguments not JSON", "index", "{query: paris", ToolStatus.INVALID_ARGUMENTS, "not valid JSON"),
    ("arguments a JSON list", "index", "[1, 2]", ToolStatus.INVALID_ARGUMENTS, "JSON object"),
    ("k zero", "index", {"query": "paris", "k": 0}, ToolStatus.INVALID_ARGUMENTS, "between 1 and 10"),
    ("k negative", "index", {"query": "paris", "k": -5}, ToolStatus.INVALID_ARGUMENTS, "between 1 and 10"),
    ("k huge", "index", {"query": "paris", "k": 10**18}, ToolStatus.INVALID_ARGUMENTS, "between 1 and 10"),
    ("k fractional", "index", {"query": "paris", "k": 2.5}, ToolStatus.INVALID_ARGUMENTS, "integer"),
    ("k a word", "index", {"query": "paris", "k": "many"}, ToolStatus.INVALID_ARGUMENTS, "integer"),
    ("NUL in query", "index", {"query": "paris\x00"}, ToolStatus.INVALID_ARGUMENTS, "NUL"),
    ("lone surrogate", "index", {"query": "paris \ud800"}, ToolStatus.INVALID_ARGUMENTS, "surrogates"),
    ("missing index dir", "missing", {"query": "paris"}, ToolStatus.ERROR, "no search index"),
    ("corrupt index", "corrupt", {"query": "paris"}, ToolStatus.ERROR, "missing or corrupt"),
    ("dense on a BM25-only index", "dense", {"query": "paris"}, ToolStatus.ERROR, "dense"),
    ("server down", "down", {"query": "paris"}, ToolStatus.ERROR, "unreachable"),
    ("server 500", "500", {"query": "paris"}, ToolStatus.ERROR, "HTTP 500"),
    ("server malformed JSON", "malformed", {"query": "paris"}, ToolStatus.ERROR, "not JSON"),
    ("server wrong shape", "wrong_shape", {"query": "paris"}, ToolStatus.ERROR, "malformed"),
]


def _make(kind: str, index_dir: Path, tmp: Path, server) -> Any:
    if kind == "index":
        return search_tool(index_dir=index_dir)
    if kind == "missing":
        return search_tool(index_dir=tmp / "does-not-exist")
    if kind == "corrupt":
        return search_tool(index_dir=_corrupt_copy(index_dir, tmp))
    if kind == "dense":
        return search_tool(index_dir=index_dir, method="dense")
    if kind == "down":
        return search_tool(backend=RetrievalServerBackend("http://127.0.0.1:9", retry=FAST))
    server.mode = {"500": "error500"}.get(kind, kind)
    return search_tool(backend=RetrievalServerBackend(server.url, retry=FAST))


@pytest.mark.parametrize(("case", "kind", "arguments", "status", "needle"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_a_typed_result(
    case: str, kind: str, arguments: Any, status: ToolStatus, needle: str, index_dir: Path, tmp_path_factory, server
) -> None:
    tmp = tmp_path_factory.getbasetemp()
    try:
        result = _call(_make(kind, index_dir, tmp, server), arguments)
    finally:
        server.mode = "ok"
    assert isinstance(result, ToolResult)
    assert result.status is status, (case, result)
    assert needle.lower() in (result.error or "").lower(), (case, result.error)
    assert result.output == ""
    # The message is safe to show the model, and it serialises.
    json.dumps(result.model_dump(mode="json"))


def test_bad_input_suite_size() -> None:
    assert len(BAD_INPUTS) >= 10


def test_tool_keeps_working_after_bad_inputs(index_dir: Path) -> None:
    tool = search_tool(index_dir=index_dir)
    session = Toolset([tool]).open()
    for args in ({"query": ""}, {"query": 1}, {"query": "x" * 5000}, {"query": "Berlin"}):
        asyncio.run(session.call(ToolCall(name="search", arguments=args)))
    result = asyncio.run(session.call(ToolCall(name="search", arguments={"query": "Berlin"})))
    assert result.ok and "(source: berlin)" in result.output
