"""Tool calls and answers in model text: parse them, and write them back.

Three formats (see :data:`reasonloop.policy.base.ToolFormat`):

* ``openai``: calls arrive in the API's ``tool_calls`` field; decode their JSON
  with :func:`parse_openai_tool_calls`.
* ``tags``: ``<python>print(1)</python>``: the tag is the tool name, the body is
  the tool's single string argument, or a JSON object of arguments.
* ``json``: ``<tool_call>{"name": "python", "arguments": {...}}</tool_call>``.

Malformed calls are never dropped silently: they come back as error strings the
agent shows to the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from reasonloop.policy.base import ToolFormat, ToolSpec
from reasonloop.trajectory.schema import ToolCall

__all__ = [
    "ANSWER_TAG",
    "extract_answer",
    "parse_openai_tool_calls",
    "parse_tool_calls",
    "render_tool_call",
    "tool_stop_strings",
]

ANSWER_TAG = "answer"
_JSON_TAG = "tool_call"
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def _names(tools: Sequence[ToolSpec] | Sequence[str]) -> list[str]:
    return [t if isinstance(t, str) else t.name for t in tools]


def _string_param(spec: ToolSpec | str | None) -> str | None:
    """The one parameter a tag body fills: the only required string parameter."""
    if spec is None or isinstance(spec, str):
        return None
    props: dict[str, Any] = spec.parameters.get("properties", {})
    required = list(spec.parameters.get("required", []))
    candidates = required or list(props)
    strings = [p for p in candidates if props.get(p, {}).get("type") == "string"]
    return strings[0] if len(strings) == 1 and len(required) <= 1 else None


def parse_tool_calls(
    text: str, tools: Sequence[ToolSpec] | Sequence[str], fmt: ToolFormat
) -> tuple[list[ToolCall], list[str]]:
    """Find the tool calls written in ``text``.

    Args:
        text: The assistant's text.
        tools: The tools offered (specs give the parameter a tag body fills).
        fmt: ``tags`` or ``json``; ``openai`` calls are not in the text, so it returns nothing.

    Returns:
        (calls, errors): decoded calls in order of appearance, and one message per
        call that could not be decoded.
    """
    if fmt == "tags":
        return _parse_tags(text, tools)
    if fmt == "json":
        return _parse_json_tags(text, _names(tools))
    return [], []


def _parse_tags(text: str, tools: Sequence[ToolSpec] | Sequence[str]) -> tuple[list[ToolCall], list[str]]:
    by_name = {(t if isinstance(t, str) else t.name): t for t in tools}
    if not by_name:
        return [], []
    names = "|".join(re.escape(n) for n in sorted(by_name, key=len, reverse=True))
    pattern = re.compile(rf"<({names})>(.*?)(</\1>|$)", re.DOTALL)
    calls: list[ToolCall] = []
    errors: list[str] = []
    for m in pattern.finditer(text):
        name, body, close = m.group(1), m.group(2), m.group(3)
        raw = m.group(0)
        if not close:
            errors.append(f"unclosed <{name}> tag: end the call with </{name}>")
            continue
        args = _tag_arguments(body, by_name[name])
        if isinstance(args, str):
            errors.append(f"<{name}> call: {args}")
            continue
        calls.append(ToolCall(name=name, arguments=args, raw=raw))
    return calls, errors


def _tag_arguments(body: str, spec: ToolSpec | str) -> dict[str, Any] | str:
    param = _string_param(spec)
    stripped = body.strip()
    if param is not None:
        return {param: _strip_fence(body)}
    if not stripped:
        return {}
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as exc:
        return f"the body must be a JSON object of arguments ({exc.msg} at position {exc.pos})"
    if not isinstance(value, dict):
        return "the body must be a JSON object of arguments"
    return value


def _strip_fence(body: str) -> str:
    """Drop a Markdown code fence around a tag body, and the surrounding blank lines."""
    text = body.strip("\n")
    m = re.fullmatch(r"\s*```[\w+-]*\n(.*?)\n?```\s*", text, re.DOTALL)
    return m.group(1) if m else text


def _parse_json_tags(text: str, names: list[str]) -> tuple[list[ToolCall], list[str]]:
    calls: list[ToolCall] = []
    errors: list[str] = []
    for m in re.finditer(rf"<{_JSON_TAG}>(.*?)(</{_JSON_TAG}>|$)", text, re.DOTALL):
        body, close = m.group(1).strip(), m.group(2)
        if not close:
            errors.append(f"unclosed <{_JSON_TAG}> tag")
            continue
        call, error = _decode_call_object(body, names, raw=m.group(0))
        if error:
            errors.append(error)
        elif call is not None:
            calls.append(call)
    return calls, errors


def _decode_call_object(body: str, names: list[str], *, raw: str) -> tuple[ToolCall | None, str | None]:
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as exc:
        return None, f"tool call is not valid JSON ({exc.msg} at position {exc.pos})"
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None, 'tool call must be a JSON object {"name": ..., "arguments": {...}}'
    args = obj.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as exc:
            return None, f"arguments of {obj['name']} are not valid JSON ({exc.msg})"
    if not isinstance(args, dict):
        return None, f"arguments of {obj['name']} must be a JSON object"
    return ToolCall(name=obj["name"], arguments=args, raw=raw), None


def parse_openai_tool_calls(raw_calls: Sequence[dict[str, Any]] | None) -> tuple[list[ToolCall], list[str]]:
    """Decode OpenAI-style ``tool_calls`` entries (``function.arguments`` is a JSON string)."""
    calls: list[ToolCall] = []
    errors: list[str] = []
    for i, entry in enumerate(raw_calls or []):
        fn = entry.get("function") if isinstance(entry, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn.get("name"):
            errors.append(f"tool call #{i + 1} has no function name")
            continue
        raw_args = fn.get("arguments")
        args: Any
        if raw_args is None or (isinstance(raw_args, str) and not raw_args.strip()):
            args = {}
        elif isinstance(raw_args, dict):
            args = raw_args
        else:
            try:
                args = json.loads(raw_args)
            except (json.JSONDecodeError, TypeError) as exc:
                errors.append(f"arguments of {fn['name']} are not valid JSON ({exc}); raw: {str(raw_args)[:200]}")
                continue
        if not isinstance(args, dict):
            errors.append(f"arguments of {fn['name']} must be a JSON object")
            continue
        call_id = entry.get("id") or None
        kwargs: dict[str, Any] = {"name": fn["name"], "arguments": args, "raw": raw_args if isinstance(raw_args, str) else None}
        if call_id:
            kwargs["id"] = str(call_id)
        calls.append(ToolCall(**kwargs))
    return calls, errors


def render_tool_call(call: ToolCall, fmt: ToolFormat, spec: ToolSpec | None = None) -> str:
    """Write ``call`` as text in ``fmt`` (inverse of :func:`parse_tool_calls`)."""
    if fmt == "tags":
        param = _string_param(spec) if spec is not None else None
        if param is not None and set(call.arguments) <= {param}:
            body = str(call.arguments.get(param, ""))
        else:
            body = json.dumps(call.arguments, ensure_ascii=False)
        return f"<{call.name}>{body}</{call.name}>"
    if fmt == "json":
        payload = json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)
        return f"<{_JSON_TAG}>{payload}</{_JSON_TAG}>"
    return ""


def tool_stop_strings(tools: Sequence[ToolSpec] | Sequence[str], fmt: ToolFormat) -> tuple[str, ...]:
    """Stop strings that end generation right after a complete tool call."""
    if fmt == "tags":
        return tuple(f"</{n}>" for n in _names(tools))
    if fmt == "json":
        return (f"</{_JSON_TAG}>",)
    return ()


def extract_answer(text: str) -> str | None:
    """The content of the last ``<answer>...</answer>``, stripped; ``None`` if absent."""
    found = _ANSWER_RE.findall(text)
    return found[-1].strip() if found else None
