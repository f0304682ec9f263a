"""The verify-and-refine agent: attempts checked by real Z3 or a function, errors fed back, k-limit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from reasonloop.agents import AgentRuntime
from reasonloop.agents.react import Agent
from reasonloop.agents.verify import build_verify_refine_agent
from reasonloop.policy.replay import ReplayPolicy
from reasonloop.trajectory.schema import NoteStep, PolicyStep, ToolCall, ToolStatus, ToolStep, Trajectory

PROMPT = "Find an integer x with x > 2 and x < 4."
BROKEN = "```smt2\n(declare-const x Int)\n(assert (> x 2))\n(assert (< x y))\n(check-sat)\n(get-model)\n```"
FIXED = "```smt2\n(declare-const x Int)\n(assert (> x 2))\n(assert (< x 4))\n(check-sat)\n(get-model)\n```"


def turn(text: str, *calls: ToolCall) -> PolicyStep:
    return PolicyStep(text=text, tool_calls=list(calls), finish_reason="tool_calls" if calls else "stop", model="rec")


def replayed(build: Callable[..., Agent], prompt: str, *turns: PolicyStep, **options: Any) -> Agent:
    """``build(policy, **options)`` with a policy that replays ``turns`` for ``prompt``."""
    messages = build(ReplayPolicy([]), **options).messages(prompt)
    recording = Trajectory(task_id="t0", messages=messages, steps=list(turns))
    return build(ReplayPolicy([recording]), **options)


def run(agent: Agent, prompt: str = PROMPT) -> Trajectory:
    async def go() -> Trajectory:
        async with AgentRuntime(agent) as runtime:
            return await runtime.run(prompt, task_id="t0")

    return asyncio.run(go())


def verdicts(traj: Trajectory) -> list[NoteStep]:
    return [s for s in traj.steps if isinstance(s, NoteStep) and "verdict" in s.data]


def test_a_script_z3_rejects_is_repaired_and_the_model_answers() -> None:
    agent = replayed(build_verify_refine_agent, PROMPT, turn(f"First try:\n{BROKEN}"), turn(f"Fixed:\n{FIXED}"),
                     turn("z3 found x = 3. <answer>3</answer>"), max_rounds=2)  # fmt: skip
    traj = run(agent)
    assert traj.status == "finished" and traj.final_answer == "3"
    assert [s.kind for s in traj.steps] == ["policy", "tool", "note", "policy", "tool", "note", "policy"]
    first, second = traj.tool_steps()
    assert first.call.name == "z3" and "(< x y)" in first.call.arguments["smtlib"]
    assert first.result.status is ToolStatus.ERROR and "unknown constant y" in (first.result.error or "")
    assert second.result.ok and second.result.data is not None and second.result.data["model"] == {"x": "3"}
    rejected, accepted = verdicts(traj)
    assert rejected.data["verdict"] == "rejected" and rejected.data["attempt"] == 1 and rejected.data["repairs"] == 0
    assert (
        accepted.data["verdict"] == "accepted"
        and accepted.data["repairs"] == 1
        and accepted.data["smt_verdict"] == "sat"
    )
    # what the model read: the z3 error with its position, then the accepted model
    assert rejected.role == "user" and "line 3 column 13: unknown constant y" in rejected.text
    assert "2 repairs left" in rejected.text and "x = 3" in accepted.text
    assert traj.metrics["feedback"] == 2 and traj.metrics["tool_calls"] == 2 and traj.metrics["policy_steps"] == 3


def test_the_k_limit_ends_the_episode_truncated() -> None:
    agent = replayed(build_verify_refine_agent, PROMPT, turn(BROKEN), turn(BROKEN.replace("y", "z")), turn(FIXED),
                     max_rounds=1)  # fmt: skip
    traj = run(agent)
    assert traj.status == "truncated" and traj.final_answer is None
    assert len(traj.policy_steps()) == 2 and len(traj.tool_steps()) == 2
    last = verdicts(traj)[-1]
    assert last.data["status"] == "truncated" and last.data["attempt"] == 2 and last.role is None
    assert "max_repairs=1" in traj.metadata["stop_reason"] and "unknown constant z" in last.text


def test_attempts_as_tool_calls_get_tool_messages() -> None:
    call = ToolCall(id="c1", name="z3", arguments={"smtlib": "(declare-const x Int) (assert (> x 2) (check-sat)"})
    fixed = ToolCall(id="c2", name="z3", arguments={"smtlib": "(declare-const x Int) (assert (> x 2)) (check-sat)"})
    agent = replayed(build_verify_refine_agent, PROMPT, turn("", call), turn("", fixed), turn("<answer>sat</answer>"))
    traj = run(agent)
    assert traj.status == "finished" and traj.final_answer == "sat"
    assert [s.call.id for s in traj.tool_steps()] == ["c1", "c2"]
    rejected = verdicts(traj)[0]
    # the report went in the tool message, the verdict note only asks for the repair
    assert "never closed" not in rejected.text and "rejected attempt 1" in rejected.text
    assert traj.tools[0]["function"]["name"] == "z3"


def test_a_function_checker_and_a_failing_one() -> None:
    def is_prime(text: str) -> tuple[bool, str]:
        n = int(text)  # raises on non-numbers: the agent reports it, it does not crash
        ok = n > 1 and all(n % d for d in range(2, n))
        return ok, f"{n} is prime" if ok else f"{n} is not prime: it has a divisor"

    prompt = "Name a prime between 20 and 30."
    agent = replayed(build_verify_refine_agent, prompt, turn("<answer>twenty</answer>"), turn("<answer>21</answer>"),
                     turn("<answer>23</answer>"), checker=is_prime, finish="checker", max_rounds=3)  # fmt: skip
    traj = run(agent, prompt)
    assert traj.status == "finished" and traj.final_answer == "23"
    crashed, wrong, good = verdicts(traj)
    assert crashed.data["checker_error"] is True and "ValueError" in crashed.text
    assert "21 is not prime" in wrong.text and good.data["verdict"] == "accepted" and good.role is None
    assert traj.tool_steps() == [] and len(traj.policy_steps()) == 3


def test_a_reply_without_an_artefact_counts_as_an_attempt() -> None:
    agent = replayed(build_verify_refine_agent, PROMPT, turn("x is 3, clearly."), turn(FIXED),
                     turn("<answer>3</answer>"))  # fmt: skip
    traj = run(agent)
    missing = verdicts(traj)[0]
    assert missing.data["verdict"] == "missing" and "contains no SMT-LIB 2 script" in missing.text
    assert traj.status == "finished" and verdicts(traj)[1].data["attempt"] == 2


def test_the_runtime_forks_a_refine_episode_after_a_verdict() -> None:
    agent = replayed(build_verify_refine_agent, PROMPT, turn(BROKEN), turn(FIXED), turn("<answer>3</answer>"))

    async def go() -> tuple[Trajectory, Trajectory]:
        async with AgentRuntime(agent) as runtime:
            ep = await runtime.start(PROMPT, task_id="t0")
            await runtime.advance(ep, until="tools")
            branch = runtime.fork(ep)
            return await runtime.finish(ep), await runtime.finish(branch)

    parent, child = asyncio.run(go())
    assert parent.status == child.status == "finished" and parent.final_answer == child.final_answer == "3"
    assert child.parent_id == parent.id and child.fork_step == 3
    assert [s.kind for s in child.steps] == [s.kind for s in parent.steps]
    assert isinstance(child.steps[4], ToolStep) and child.steps[4].result.ok


def test_forced_token_ids_and_streamed_steps_match_the_recording() -> None:
    """A tokenising policy: feedback ids are appended once, on the verdict note, and replay matches."""

    def even(text: str) -> tuple[bool, str]:
        return int(text) % 2 == 0, f"{text} is {'even' if int(text) % 2 == 0 else 'odd'}"

    prompt = "An even number?"
    build: Callable[..., Agent] = build_verify_refine_agent
    messages = build(ReplayPolicy([]), checker=even, system_prompt="").messages(prompt)
    recorded = Trajectory(task_id="t0", messages=messages, prompt_token_ids=[1, 2, 3], steps=[
        PolicyStep(text="<answer>3</answer>", token_ids=[10, 11], finish_reason="stop"),
        NoteStep(text="rejected", role="user", token_ids=[20, 21, 22]),
        PolicyStep(text="<answer>4</answer>", token_ids=[12, 13], finish_reason="stop"),
    ])  # fmt: skip
    agent = build(ReplayPolicy([recorded]), checker=even, system_prompt="", finish="checker")
    events: list[dict[str, Any]] = []

    async def go() -> Trajectory:
        async with AgentRuntime(agent, on_step=events.append) as runtime:
            return await runtime.run(prompt, task_id="t0")

    traj = asyncio.run(go())
    assert traj.status == "finished" and traj.final_answer == "4"
    assert traj.token_ids() == [1, 2, 3, 10, 11, 20, 21, 22, 12, 13]
    assert traj.loss_mask() == [0, 0, 0, 1, 1, 0, 0, 0, 1, 1]
    assert [s.token_ids for s in traj.steps] == [[10, 11], [20, 21, 22], [12, 13], []]
    assert [e["index"] for e in events] == list(range(len(traj.steps)))
    assert [e["node"] for e in events] == ["policy", "tools", "policy", "tools"]


def test_registry_shape_builder_uses_the_given_z3_tool() -> None:
    from reasonloop.agents.verify import verify_refine_agent_from_toolset
    from reasonloop.tools.smt import smt_tool

    z3 = smt_tool(timeout_s=1)
    agent = verify_refine_agent_from_toolset(ReplayPolicy([]), [z3], system_prompt=None, max_steps=5)
    assert agent.toolset["z3"] is z3 and [s.name for s in agent.specs] == ["z3"] and agent.limits.max_steps == 5
    assert agent.system_prompt is not None and "```smt2" in agent.system_prompt
