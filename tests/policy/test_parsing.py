"""Tool calls written in text: decoded, or reported; never dropped silently."""

import pytest

from reasonloop.policy.base import ToolSpec
from reasonloop.policy.parsing import (
    extract_answer,
    parse_openai_tool_calls,
    parse_tool_calls,
    render_tool_call,
    tool_stop_strings,
)
from reasonloop.trajectory.schema import ToolCall

PYTHON = ToolSpec(
    name="python",
    description="run code",
    parameters={"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]},
)
ADD = ToolSpec(
    name="add",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
)


def test_tag_body_fills_the_single_string_parameter():
    calls, errors = parse_tool_calls("Let me compute.\n<python>\nprint(1+1)\n</python>", [PYTHON, ADD], "tags")
    assert errors == []
    assert [(c.name, c.arguments) for c in calls] == [("python", {"code": "print(1+1)"})]
    assert calls[0].raw == "<python>\nprint(1+1)\n</python>"


def test_tag_body_code_fence_is_removed():
    calls, _ = parse_tool_calls("<python>\n```python\nx = 2\nprint(x)\n```\n</python>", [PYTHON], "tags")
    assert calls[0].arguments == {"code": "x = 2\nprint(x)"}


def test_tag_with_json_arguments_and_errors():
    calls, errors = parse_tool_calls('<add>{"a": 1, "b": 2}</add> then <add>{oops}</add>', [PYTHON, ADD], "tags")
    assert [c.arguments for c in calls] == [{"a": 1, "b": 2}]
    assert len(errors) == 1 and errors[0].startswith("<add> call: the body must be a JSON object")


def test_unclosed_tag_is_an_error():
    calls, errors = parse_tool_calls("<python>print(1)", [PYTHON], "tags")
    assert calls == [] and errors == ["unclosed <python> tag: end the call with </python>"]


def test_json_tool_call_format():
    text = 'x <tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>'
    text += ' <tool_call>{"name": "add", "arguments": "{\\"a\\": 3, \\"b\\": 4}"}</tool_call>'
    text += " <tool_call>not json</tool_call> <tool_call>[1]</tool_call>"
    calls, errors = parse_tool_calls(text, [ADD], "json")
    assert [c.arguments for c in calls] == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]
    assert errors[0].startswith("tool call is not valid JSON")
    assert errors[1].startswith("tool call must be a JSON object")


def test_openai_tool_calls_decode_and_report():
    raw = [
        {"id": "c1", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}},
        {"id": "c2", "function": {"name": "add", "arguments": "{bad"}},
        {"id": "c3", "function": {"arguments": "{}"}},
        {"id": "c4", "function": {"name": "add", "arguments": "[1]"}},
        {"id": "c5", "function": {"name": "python", "arguments": ""}},
    ]
    calls, errors = parse_openai_tool_calls(raw)
    assert [(c.id, c.name, c.arguments) for c in calls] == [("c1", "add", {"a": 1, "b": 2}), ("c5", "python", {})]
    assert len(errors) == 3
    assert "not valid JSON" in errors[0] and "no function name" in errors[1] and "JSON object" in errors[2]


@pytest.mark.parametrize("fmt", ["tags", "json"])
def test_render_then_parse_round_trips(fmt):
    for call, spec in [
        (ToolCall(name="python", arguments={"code": "print('<b>')"}), PYTHON),
        (ToolCall(name="add", arguments={"a": 1, "b": 2}), ADD),
    ]:
        text = render_tool_call(call, fmt, spec)
        calls, errors = parse_tool_calls(text, [PYTHON, ADD], fmt)
        assert errors == [] and calls[0].name == call.name and calls[0].arguments == call.arguments


def test_stop_strings_and_answers():
    assert tool_stop_strings([PYTHON, ADD], "tags") == ("</python>", "</add>")
    assert tool_stop_strings([PYTHON], "json") == ("</tool_call>",)
    assert tool_stop_strings([PYTHON], "openai") == ()
    assert extract_answer("<answer>1</answer> and <answer> 42 </answer>") == "42"
    assert extract_answer("no answer") is None
