"""The tools protocol: schema from signatures, validation, statuses, sessions."""

import asyncio
import itertools
import time

import pytest

from reasonloop.errors import ToolDefinitionError
from reasonloop.tools.base import Tool, ToolContext, Toolset, tool
from reasonloop.trajectory.schema import ToolCall, ToolStatus


@tool
def add(a: int, b: int = 2) -> int:
    """Add two integers.

    Args:
        a: First term.
        b: Second term,
            spanning two lines.

    Returns:
        The sum.
    """
    return a + b


def run(coro):
    return asyncio.run(coro)


def test_schema_comes_from_signature_and_docstring():
    spec = add.spec
    assert spec.name == "add"
    assert spec.description == "Add two integers."
    props = spec.parameters["properties"]
    assert props["a"] == {"type": "integer", "description": "First term."}
    assert props["b"]["default"] == 2
    assert props["b"]["description"] == "Second term, spanning two lines."
    assert spec.parameters["required"] == ["a"]
    assert spec.parameters["additionalProperties"] is False
    assert spec.openai_schema()["function"]["name"] == "add"


def test_valid_call_returns_ok_with_data():
    result = run(add({"a": 40, "b": 2}))
    assert result.status is ToolStatus.OK
    assert result.output == "42"
    assert result.data == {"value": 42}
    assert result.duration_s >= 0


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"a": "x"}, "a: Input should be a valid integer"),
        ({}, "a: Field required"),
        ({"a": 1, "c": 3}, "c: Extra inputs are not permitted"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_bad_arguments_are_reported_not_raised(arguments, fragment):
    result = run(add(arguments))
    assert result.status is ToolStatus.INVALID_ARGUMENTS
    assert fragment in result.error


def test_json_string_arguments_are_accepted():
    assert run(add('{"a": 1, "b": 1}')).output == "2"


def test_exception_becomes_error_result():
    @tool
    def boom(x: int) -> str:
        """Fails."""
        raise RuntimeError(f"bad {x}")

    result = run(boom({"x": 3}))
    assert result.status is ToolStatus.ERROR
    assert result.error == "RuntimeError: bad 3"


def test_timeout_becomes_timeout_result():
    @tool(timeout_s=0.2)
    async def slow() -> str:
        """Sleeps."""
        await asyncio.sleep(5)
        return "late"

    start = time.perf_counter()
    result = run(slow({}))
    assert result.status is ToolStatus.TIMEOUT
    assert "0.2 s" in result.error
    assert time.perf_counter() - start < 2


def test_output_is_truncated_and_flagged():
    @tool(max_output_chars=10)
    def chatty() -> str:
        """Talks."""
        return "x" * 100

    result = run(chatty({}))
    assert result.truncated
    assert result.output.startswith("x" * 10)
    assert "truncated 90 characters" in result.output


def test_definition_errors():
    with pytest.raises(ToolDefinitionError, match="needs a type annotation"):

        @tool
        def untyped(x):  # type: ignore[no-untyped-def]
            """No annotation."""

    with pytest.raises(ToolDefinitionError, match="invalid tool name"):
        tool(name="bad name!")(lambda: None)
    with pytest.raises(ToolDefinitionError, match="two tools are named"):
        Toolset([add, add])
    with pytest.raises(ToolDefinitionError, match="not a Tool"):
        Toolset([lambda: 1])  # type: ignore[list-item]


class CounterSessions:
    """A stateful tool's sessions: a list of calls, forked by copying."""

    def __init__(self) -> None:
        self.ids = itertools.count()
        self.closed: list[int] = []

    def open(self) -> dict:
        return {"id": next(self.ids), "calls": []}

    def fork(self, session: dict) -> dict:
        return {"id": next(self.ids), "calls": list(session["calls"])}

    def close(self, session: dict) -> None:
        self.closed.append(session["id"])


def make_stateful() -> tuple[Tool, CounterSessions]:
    sessions = CounterSessions()

    @tool(sessions=sessions)
    def remember(item: str, ctx: ToolContext) -> str:
        """Remember an item and list everything remembered so far."""
        ctx.session["calls"].append(item)
        return ",".join(ctx.session["calls"])

    return remember, sessions


def test_context_parameter_is_not_in_schema():
    remember, _ = make_stateful()
    assert list(remember.spec.parameters["properties"]) == ["item"]


def test_sessions_persist_within_episode_and_fork_independently():
    remember, sessions = make_stateful()
    toolset = Toolset([remember, add])
    a = toolset.open("ep-a")
    assert run(a.call(ToolCall(name="remember", arguments={"item": "x"}))).output == "x"
    assert run(a.call(ToolCall(name="remember", arguments={"item": "y"}))).output == "x,y"
    child = a.fork("ep-a/1")
    assert run(child.call(ToolCall(name="remember", arguments={"item": "child"}))).output == "x,y,child"
    assert run(a.call(ToolCall(name="remember", arguments={"item": "z"}))).output == "x,y,z"
    b = toolset.open("ep-b")
    assert run(b.call(ToolCall(name="remember", arguments={"item": "fresh"}))).output == "fresh"
    for session in (a, child, b):
        session.close()
    assert sorted(sessions.closed) == [0, 1, 2]
    closed = run(a.call(ToolCall(name="add", arguments={"a": 1})))
    assert closed.status is ToolStatus.REFUSED


def test_unknown_tool_lists_available_ones():
    session = Toolset([add]).open()
    result = run(session.call(ToolCall(name="nope", arguments={})))
    assert result.status is ToolStatus.ERROR
    assert result.error == "unknown tool 'nope'; available tools: add"


def test_session_open_failure_is_an_error_result():
    class Broken(CounterSessions):
        def open(self) -> dict:
            raise OSError("no sandbox")

    @tool(sessions=Broken())
    def needs_session(ctx: ToolContext) -> str:
        """Needs a session."""
        return "never"

    result = run(Toolset([needs_session]).open().call(ToolCall(name="needs_session")))
    assert result.status is ToolStatus.ERROR
    assert "could not start: OSError: no sandbox" in result.error
