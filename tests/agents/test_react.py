"""The ReAct graph: tool turns, observations for everything that went wrong, limits, streaming."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from reasonloop.agents import AgentRuntime, build_react_agent
from reasonloop.errors import ConfigError
from reasonloop.policy.replay import ReplayPolicy
from reasonloop.trajectory.schema import NoteStep, PolicyStep, ToolStatus, ToolStep


def run(agent: Any, prompt: str, **kwargs: Any) -> Any:
    async def go() -> Any:
        return await AgentRuntime(agent, **kwargs).run(prompt, task_id="t0")

    return asyncio.run(go())


def test_tool_calls_are_executed_and_recorded(rec: Any) -> None:
    recorded = rec.episode("2+3, then +4?", rec.calls(("add", '{"a": 2, "b": 3}')), rec.calls(("add", {"a": 5, "b": 4})),
                           rec.answer("9"))
    agent = build_react_agent(ReplayPolicy([recorded]), [rec.add])
    traj = run(agent, "2+3, then +4?")
    assert traj.status == "finished" and traj.final_answer == "9"
    assert [s.kind for s in traj.steps] == ["policy", "tool", "policy", "tool", "policy"]
    outputs = [s.result.output for s in traj.tool_steps()]
    assert outputs == ["5", "9"]
    assert all(s.result.status is ToolStatus.OK for s in traj.tool_steps())
    first = traj.tool_steps()[0]
    assert first.call.id == "call_0" and first.call.arguments == {"a": 2, "b": 3} and first.node == "tools"
    assert traj.metrics["policy_steps"] == 2 + 1 and traj.metrics["tool_calls"] == 2
    assert traj.metadata["tool_format"] == "openai" and traj.tools[0]["function"]["name"] == "add"


def test_several_calls_in_one_turn_get_openai_tool_messages(rec: Any) -> None:
    recorded = rec.episode("both?", rec.calls(("add", {"a": 1, "b": 1}), ("add", {"a": 2, "b": 2})), rec.answer("2 4"))
    agent = build_react_agent(ReplayPolicy([recorded]), [rec.add])

    async def go() -> Any:
        runtime = AgentRuntime(agent)
        ep = await runtime.start("both?", task_id="t0")
        await runtime.advance(ep, until="tools")
        messages = list(ep.state["messages"])
        await runtime.finish(ep)
        return messages

    messages = asyncio.run(go())
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in messages[2:]] == [("call_0", "2"), ("call_1", "4")]
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["call_0", "call_1"]


def test_bad_calls_become_observations_and_the_episode_goes_on(rec: Any) -> None:
    recorded = rec.episode(
        "try things",
        rec.calls(("nope", {"x": 1})),  # unknown tool
        rec.calls(("add", {"a": "two", "b": 3})),  # invalid arguments
        rec.calls(("add", '{"a": 2, "b":')),  # malformed JSON -> parse error
        rec.answer("5"),
    )
    agent = build_react_agent(ReplayPolicy([recorded]), [rec.add])
    traj = run(agent, "try things")
    assert traj.status == "finished" and traj.final_answer == "5"
    tools = traj.tool_steps()
    assert tools[0].result.status is ToolStatus.ERROR and "unknown tool 'nope'" in (tools[0].result.error or "")
    assert tools[1].result.status is ToolStatus.INVALID_ARGUMENTS and "a:" in (tools[1].result.error or "")
    notes = [s for s in traj.steps if isinstance(s, NoteStep)]
    assert len(notes) == 1 and notes[0].role == "user" and notes[0].data == {"reason": "parse_error"}
    assert "not valid JSON" in notes[0].text
    assert traj.metrics["feedback"] == 1 and traj.metrics["tool_calls"] == 2


def test_length_empty_and_failed_turns_are_shown_to_the_model(rec: Any) -> None:
    recorded = rec.episode(
        "think",
        rec.text("Let me think about this very long", finish_reason="length"),
        rec.text(""),
        rec.text("Short now. <answer>7</answer>", finish_reason="length"),  # cut, but it answered
    )
    agent = build_react_agent(ReplayPolicy([recorded]), [rec.add])
    traj = run(agent, "think")
    assert traj.status == "finished" and traj.final_answer == "7"
    notes = [s for s in traj.steps if isinstance(s, NoteStep)]
    assert [n.data["reason"] for n in notes] == ["length", "empty"]
    assert all(n.role == "user" for n in notes)
    assert traj.metrics["feedback"] == 2


def test_failed_policy_calls_are_counted_then_end_the_episode(rec: Any) -> None:
    agent = build_react_agent(ReplayPolicy([rec.episode("known", rec.answer("1"))]), [rec.add], max_errors=2)
    traj = run(agent, "a prompt nobody recorded")
    kinds = [(s.kind, getattr(s, "role", None)) for s in traj.steps]
    assert kinds == [("policy", None), ("note", "user"), ("policy", None), ("note", None)]
    assert traj.status == "error" and "2 policy calls in a row failed" in (traj.error or "")
    assert traj.policy_steps()[0].finish_reason == "error" and traj.final_answer is None


def test_step_limit_truncates_with_a_note(rec: Any) -> None:
    steps = [rec.calls(("add", {"a": i, "b": 1})) for i in range(10)]
    agent = build_react_agent(ReplayPolicy([rec.episode("loop", *steps)]), [rec.add], max_steps=3)
    traj = run(agent, "loop")
    assert traj.status == "truncated" and traj.final_answer is None
    assert len(traj.policy_steps()) == 3 and len(traj.tool_steps()) == 2
    last = traj.steps[-1]
    assert isinstance(last, NoteStep) and last.role is None and "max_steps=3" in last.text
    assert traj.metadata["stop_reason"] == last.text


def test_tool_call_limit_truncates_before_running_the_turn(rec: Any) -> None:
    steps = [rec.calls(("add", {"a": 1, "b": 1}), ("add", {"a": 2, "b": 2})) for _ in range(3)]
    agent = build_react_agent(ReplayPolicy([rec.episode("many", *steps)]), [rec.add], max_tool_calls=3)
    traj = run(agent, "many")
    assert traj.status == "truncated"
    assert len(traj.tool_steps()) == 2  # the second turn's two calls would exceed 3
    assert "only 1 of max_tool_calls=3 remain" in traj.steps[-1].text  # type: ignore[union-attr]


def test_recursion_limit_is_set_from_the_step_budget(rec: Any) -> None:
    agent = build_react_agent(ReplayPolicy([]), [rec.add], max_steps=5)
    assert agent.recursion_limit == 13
    assert agent.graph.config["recursion_limit"] == 13
    assert agent.compile(InMemorySaver()).config["recursion_limit"] == 13
    assert set(agent.get_graph().nodes) == {"__start__", "policy", "tools", "__end__"}


def test_steps_stream_live_in_order(rec: Any) -> None:
    recorded = rec.episode("stream", rec.calls(("add", {"a": 1, "b": 2}), ("add", {"a": 3, "b": 4})), rec.answer("3"))
    agent = build_react_agent(ReplayPolicy([recorded]), [rec.add])
    callback_events: list[dict[str, Any]] = []

    async def go() -> list[Any]:
        runtime = AgentRuntime(agent, on_step=callback_events.append)
        return [item async for item in runtime.stream("stream", task_id="t0")]

    items = asyncio.run(go())
    traj, events = items[-1], items[:-1]
    assert [(e["node"], e["index"]) for e in events] == [("policy", 0), ("tools", 1), ("tools", 2), ("policy", 3)]
    assert {e["episode_id"] for e in events} == {traj.id}
    assert [e["step"] for e in events] == [s.model_dump(mode="json") for s in traj.steps]
    assert callback_events == events


def test_the_compiled_graph_runs_with_an_explicit_context(rec: Any) -> None:
    recorded = rec.episode("direct", rec.calls(("add", {"a": 1, "b": 2})), rec.answer("3"))
    agent = build_react_agent(ReplayPolicy([recorded]), [rec.add])
    messages = agent.messages("direct")

    async def go() -> dict[str, Any]:
        ctx = agent.context(episode_id="e1")
        try:
            return await agent.ainvoke(agent.initial_state(messages), context=ctx)
        finally:
            ctx.session.close()

    state = asyncio.run(go())
    assert state["status"] == "finished" and state["final_answer"] == "3"
    assert [s["kind"] for s in state["steps"]] == ["policy", "tool", "policy"]
    assert isinstance(PolicyStep.model_validate(state["steps"][0]), PolicyStep)
    assert ToolStep.model_validate(state["steps"][1]).result.output == "3"


def test_the_graph_refuses_to_run_without_its_context(rec: Any) -> None:
    agent = build_react_agent(ReplayPolicy([rec.episode("x", rec.answer("1"))]), [rec.add])
    with pytest.raises(ConfigError, match=r"context=agent\.context"):
        asyncio.run(agent.ainvoke(agent.initial_state(agent.messages("x"))))
