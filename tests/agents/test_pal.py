"""The program-aided agent: programs run in the real sandbox, tracebacks go back, repairs are counted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from reasonloop.agents import AgentRuntime
from reasonloop.agents.pal import PAL_PROMPT, build_pal_agent, pal_agent_from_toolset
from reasonloop.agents.react import Agent
from reasonloop.policy.replay import ReplayPolicy
from reasonloop.tools.base import Tool
from reasonloop.tools.python import PythonConfig, python_tool
from reasonloop.trajectory.schema import NoteStep, PolicyStep, ToolCall, ToolStatus, Trajectory

PROMPT = "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?"
RAISES = "```python\nmoney = 23\nspent = 5 * bagel_price\nprint(money - spent)\n```"
FIXED = "```python\nmoney = 23\nbagel_price = 3\nprint(money - 5 * bagel_price)\n```"


@pytest.fixture(scope="module")
def python() -> Iterator[Tool]:
    yield python_tool(PythonConfig(timeout_s=10, packages=()))


def turn(text: str, *calls: ToolCall) -> PolicyStep:
    return PolicyStep(text=text, tool_calls=list(calls), finish_reason="tool_calls" if calls else "stop", model="rec")


def run(python: Tool, *turns: PolicyStep, **options: Any) -> tuple[Trajectory, Agent]:
    messages = [{"role": "system", "content": PAL_PROMPT}, {"role": "user", "content": PROMPT}]
    policy = ReplayPolicy([Trajectory(task_id="t0", messages=messages, steps=list(turns))])
    agent = build_pal_agent(policy, python=python, **options)

    async def go() -> Trajectory:
        async with AgentRuntime(agent) as runtime:
            return await runtime.run(PROMPT, task_id="t0")

    return asyncio.run(go()), agent


def verdicts(traj: Trajectory) -> list[NoteStep]:
    return [s for s in traj.steps if isinstance(s, NoteStep) and "verdict" in s.data]


def test_a_program_that_raises_is_repaired_and_its_output_is_the_answer(python: Tool) -> None:
    traj, _ = run(python, turn(f"Let me compute.\n{RAISES}"), turn(f"I forgot the price.\n{FIXED}"), max_repairs=2)
    assert traj.status == "finished" and traj.final_answer == "8"
    assert [s.kind for s in traj.steps] == ["policy", "tool", "note", "policy", "tool", "note"]
    failed, ran = traj.tool_steps()
    assert failed.result.status is ToolStatus.ERROR and failed.call.arguments["code"].startswith("money = 23")
    assert ran.result.ok and ran.result.output.strip() == "8"
    rejected, accepted = verdicts(traj)
    # the model read the trimmed traceback: its own line, the error, not the sandbox's frames
    assert rejected.role == "user" and "NameError: name 'bagel_price' is not defined" in rejected.text
    assert 'File "<cell-1>", line 2' in rejected.text and "_python_worker" not in rejected.text
    assert "2 repairs left" in rejected.text and rejected.data["repairs"] == 0
    assert accepted.data["verdict"] == "accepted" and accepted.data["repairs"] == 1 and accepted.role is None
    assert traj.metrics["policy_steps"] == 2 and traj.metrics["tool_calls"] == 2


def test_the_answer_variable_is_read_back_from_the_session(python: Tool) -> None:
    program = "```python\nimport math\nanswer = math.comb(6, 2)\nprint('pairs computed')\n```"
    traj, _ = run(python, turn(program))
    assert traj.status == "finished" and traj.final_answer == "15"
    run_step, probe = traj.tool_steps()
    assert run_step.result.output.strip() == "pairs computed"
    assert probe.call.arguments == {"code": "print(answer)"} and probe.result.output.strip() == "15"


def test_a_program_without_a_result_is_sent_back(python: Tool) -> None:
    call = ToolCall(id="c1", name="python", arguments={"code": "x = 23 - 15"})
    fixed = ToolCall(id="c2", name="python", arguments={"code": "x = 23 - 15\nx"})
    traj, agent = run(python, turn("", call), turn("", fixed))
    assert traj.status == "finished" and traj.final_answer == "8"
    first = verdicts(traj)[0]
    assert first.data["no_result"] is True and "gave no result" in first.text
    assert [s.call.id for s in traj.tool_steps()] == ["c1", "c2"] and agent.specs[0].name == "python"


def test_the_k_limit_ends_the_episode_truncated(python: Tool) -> None:
    traj, _ = run(python, turn(RAISES), turn("```python\nprint(23 - 5 * price)\n```"), turn(FIXED), max_repairs=1)
    assert traj.status == "truncated" and traj.final_answer is None
    assert len(traj.policy_steps()) == 2 and all(s.result.status is ToolStatus.ERROR for s in traj.tool_steps())
    last = verdicts(traj)[-1]
    assert last.data["status"] == "truncated" and "NameError: name 'price'" in last.text
    assert "max_repairs=1" in traj.metadata["stop_reason"]


def test_registry_shape_builder_uses_the_given_python_tool(python: Tool) -> None:
    agent = pal_agent_from_toolset(ReplayPolicy([]), [python], max_repairs=0)
    assert agent.name == "pal" and agent.toolset["python"] is python and agent.limits.max_steps == 4


def test_a_forked_episode_repairs_in_its_own_interpreter(python: Tool) -> None:
    messages = [{"role": "system", "content": PAL_PROMPT}, {"role": "user", "content": PROMPT}]
    first = "```python\ncounter = 1\nprint(money)\n```"
    fixed = "```python\ncounter += 1\nmoney = 23 - 15\nprint(money, counter)\n```"
    recording = Trajectory(task_id="t0", messages=messages, steps=[turn(first), turn(fixed)])
    agent = build_pal_agent(ReplayPolicy([recording]), python=python)

    async def go() -> tuple[Trajectory, Trajectory]:
        async with AgentRuntime(agent) as runtime:
            ep = await runtime.start(PROMPT, task_id="t0")
            await runtime.advance(ep, until="tools")
            branch = runtime.fork(ep)
            return await runtime.finish(ep), await runtime.finish(branch)

    parent, child = asyncio.run(go())
    # both continue from the state the failed program left (counter = 1), each in its own session
    assert parent.final_answer == child.final_answer == "8 2"
    assert child.parent_id == parent.id and child.fork_step == 3
