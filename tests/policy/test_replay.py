"""ReplayPolicy: recorded turns served back exactly, and never anything invented."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from reasonloop.errors import ConfigError
from reasonloop.policy.base import Completion, Context, Policy, SamplingParams
from reasonloop.policy.replay import ReplayPolicy
from reasonloop.trajectory.schema import NoteStep, PolicyStep, ToolCall, ToolResult, ToolStatus, ToolStep, Trajectory

USER = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+3?"}]
CALL = ToolCall(id="call_a", name="add", arguments={"a": 2, "b": 3})


def recorded(*, ids: bool = True, task_id: str = "t0", answer: str = "5", **meta: Any) -> Trajectory:
    first = PolicyStep(text="", tool_calls=[CALL], finish_reason="tool_calls", model="m",
                       token_ids=[4, 5] if ids else [], logprobs=[-0.5, -0.25] if ids else None,
                       entropies=[1.0, 0.5] if ids else None, entropy_kind="exact" if ids else "none")
    failed = PolicyStep(text="timeout", finish_reason="error", model="m")
    note = NoteStep(text="The model call failed", role="user", token_ids=[9] if ids else [])
    tool = ToolStep(call=CALL, result=ToolResult(status=ToolStatus.OK, output="5"), token_ids=[6, 7] if ids else [])
    final = PolicyStep(text=f"<answer>{answer}</answer>", finish_reason="stop", model="m", token_ids=[8] if ids else [])
    return Trajectory(task_id=task_id, messages=USER, prompt_token_ids=[1, 2, 3] if ids else [],
                      steps=[first, tool, failed, note, final], metadata=meta)


def ctx(*extra: dict[str, Any], token_ids: list[int] | None = None) -> Context:
    return Context(messages=[*USER, *extra], token_ids=token_ids)


def generate(policy: ReplayPolicy, context: Context) -> Completion:
    return asyncio.run(policy.generate(context, [], SamplingParams()))


def test_serves_each_turn_with_everything_recorded() -> None:
    policy = ReplayPolicy([recorded()])
    assert isinstance(policy, Policy) and policy.name == "replay" and policy.tool_format == "openai"
    first = generate(policy, ctx(token_ids=[1, 2, 3]))
    assert first.tool_calls == [CALL] and first.finish_reason == "tool_calls"
    assert (first.token_ids, first.logprobs, first.entropies, first.entropy_kind) == ([4, 5], [-0.5, -0.25],
                                                                                       [1.0, 0.5], "exact")
    assistant = first.message()
    assert assistant["tool_calls"][0]["id"] == "call_a"
    after_tool = [assistant, {"role": "tool", "tool_call_id": "call_a", "content": "5"}]
    # The recorded failed call put nothing in the context and is skipped; the note's ids stay forced.
    second = generate(policy, ctx(*after_tool, token_ids=[1, 2, 3, 4, 5, 6, 7, 9]))
    assert second.text == "<answer>5</answer>" and second.token_ids == [8] and second.model == "m"


def test_start_and_extend_give_the_recorded_forced_ids() -> None:
    policy = ReplayPolicy([recorded()])
    assert policy.start(USER, []) == [1, 2, 3]
    after_first = ctx({"role": "assistant", "content": ""}, token_ids=[1, 2, 3, 4, 5])
    assert policy.extend(after_first, [{"role": "tool", "content": "5"}], []) == [6, 7, 9]
    bare = ReplayPolicy([recorded(ids=False)])
    assert bare.start(USER, []) is None and bare.extend(after_first, [], []) is None
    assert generate(bare, ctx(token_ids=None)).tool_calls == [CALL]


def test_unmatched_contexts_get_error_completions_not_text() -> None:
    policy = ReplayPolicy([recorded()])
    other = generate(policy, Context(messages=[{"role": "user", "content": "something else"}]))
    assert other.finish_reason == "error" and "no recording" in other.text and not other.tool_calls
    done = [{"role": "assistant", "content": "x"}, {"role": "assistant", "content": "y"}]
    beyond = generate(policy, ctx(*done))
    assert beyond.finish_reason == "error" and "only 2 assistant turns" in beyond.text
    diverged = generate(policy, ctx(token_ids=[1, 2, 99]))
    assert diverged.finish_reason == "error" and "diverged from the recording at token 2" in diverged.text
    assert policy.start([{"role": "user", "content": "nope"}], []) is None


def test_matches_a_longer_context_by_its_initial_messages_and_narrows_by_task() -> None:
    a, b = recorded(task_id="a", answer="A"), recorded(task_id="b", answer="B")
    turn2 = ctx({"role": "assistant", "content": ""}, {"role": "tool", "content": "5"})
    assert generate(ReplayPolicy([a, b]), turn2).text == "<answer>A</answer>"
    assert generate(ReplayPolicy([a, b], task_id="b"), turn2).text == "<answer>B</answer>"
    assert len(ReplayPolicy([a, b], task_id="c")) == 0


def test_from_jsonl_and_tool_format(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_text(recorded(tool_format="json").to_json() + "\n\n", encoding="utf-8")
    policy = ReplayPolicy.from_jsonl(path, name="replay:x")
    assert policy.tool_format == "json" and policy.name == "replay:x" and len(policy) == 1
    assert ReplayPolicy.from_jsonl(path, tool_format="tags").tool_format == "tags"
    with pytest.raises(ConfigError, match="tool_format"):
        ReplayPolicy([recorded(tool_format="xml")])
    path.write_text(recorded().to_json() + "\n{not json\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"runs.jsonl:2"):
        ReplayPolicy.from_jsonl(path)
