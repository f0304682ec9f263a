"""Property tests: arbitrary queries, arguments and documents never crash the tool or leak tags."""

from __future__ import annotations

import asyncio
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reasonloop.policy.parsing import parse_tool_calls
from reasonloop.tools.search import SearchHit, SearchResult, SearchStatus, build_index, render_result, search_tool
from reasonloop.trajectory.schema import ToolResult, ToolStatus

TOOL_NAMES = ["python", "search", "tool_call", "answer", "im_start"]
TAGGY = st.sampled_from(
    [
        "<python>",
        "</python>",
        "<tool_call>",
        "</tool_call>",
        "<|im_start|>",
        "<search>",
        "</search>",
        "\n",
        "{",
        '"name": "python"',
    ]
)
HOSTILE_TEXT = st.lists(st.one_of(st.text(max_size=30), TAGGY), max_size=12).map("".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    arguments=st.one_of(
        st.dictionaries(
            st.sampled_from(["query", "k", "extra"]),
            st.one_of(st.text(max_size=50), st.integers(), st.none(), st.floats(allow_nan=True)),
        ),
        st.text(max_size=40),
        st.none(),
    )
)
def test_any_arguments_give_a_typed_result(tmp_path_factory, arguments) -> None:
    root = tmp_path_factory.getbasetemp() / "fuzz-index"
    if not root.exists():
        corpus = tmp_path_factory.getbasetemp() / "fuzz.jsonl"
        corpus.write_text(
            "\n".join(
                json.dumps({"id": i, "text": t}) for i, t in enumerate(["alpha beta", "gamma <python>delta</python>"])
            )
        )
        build_index(corpus, root)
    result = asyncio.run(search_tool(index_dir=root)(arguments))
    assert isinstance(result, ToolResult)
    assert result.status in (ToolStatus.OK, ToolStatus.INVALID_ARGUMENTS)
    if result.ok:
        for fmt in ("tags", "json"):
            assert parse_tool_calls(result.output, TOOL_NAMES, fmt) == ([], [])
    else:
        assert result.error


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(HOSTILE_TEXT, min_size=1, max_size=4), title=HOSTILE_TEXT, query=HOSTILE_TEXT)
def test_no_document_text_renders_as_a_tool_call(texts: list[str], title: str, query: str) -> None:
    hits = [SearchHit(id=f"d{i}", title=title, text=t) for i, t in enumerate(texts)]
    rendered = render_result(
        SearchResult(status=SearchStatus.OK, query=query or "q", k=len(hits), backend="t", hits=hits)
    )
    for fmt in ("tags", "json"):
        assert parse_tool_calls(rendered, TOOL_NAMES, fmt) == ([], [])
    assert "<" not in rendered.split("\n", 1)[1]
