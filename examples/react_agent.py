"""Run the ReAct agent on a recorded episode, with a typed tool, and print the trajectory.

    python examples/react_agent.py

The policy is a ReplayPolicy over an episode recorded in this script, so the
example runs offline and prints the same thing every time; swap in
``load_policy("openai/gpt-4o-mini")`` or ``load_policy("hf:PATH")`` for a real model.
The tool runs for real: the agent executes each call and records the result.
"""

from __future__ import annotations

import asyncio

from reasonloop.agents import AgentRuntime, build_react_agent
from reasonloop.policy.replay import ReplayPolicy
from reasonloop.tools.base import tool
from reasonloop.trajectory.schema import NoteStep, PolicyStep, ToolCall, ToolStep, Trajectory

PROMPT = "A box holds 6 rows of 7 eggs. How many eggs are in 3 boxes?"


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers.

    Args:
        a: First factor.
        b: Second factor.
    """
    return a * b


def recorded_episode() -> Trajectory:
    """What a model wrote for PROMPT (only its assistant turns are replayed)."""

    def turn(text: str, *calls: tuple[str, dict[str, float]]) -> PolicyStep:
        tool_calls = [ToolCall(id=f"call_{i}", name=n, arguments=a) for i, (n, a) in enumerate(calls)]
        return PolicyStep(text=text, tool_calls=tool_calls, finish_reason="tool_calls" if calls else "stop",
                          model="recorded-model")

    return Trajectory(
        task_id="eggs",
        messages=[{"role": "user", "content": PROMPT}],
        steps=[
            turn("Eggs per box first.", ("multiply", {"a": 6, "b": 7})),
            turn("Now three boxes.", ("multiply", {"a": 42, "b": 3})),
            turn("3 boxes hold 126 eggs. <answer>126</answer>"),
        ],
    )


def show(traj: Trajectory) -> None:
    print(f"task {traj.task_id}: {traj.status}, {len(traj.steps)} steps, answer {traj.final_answer!r}")
    for i, step in enumerate(traj.steps):
        if isinstance(step, PolicyStep):
            calls = ", ".join(f"{c.name}({c.arguments})" for c in step.tool_calls)
            print(f"  {i} [{step.node}] {step.text!r}" + (f" -> {calls}" if calls else ""))
        elif isinstance(step, ToolStep):
            print(f"  {i} [{step.node}] {step.call.name} = {step.result.to_observation()} ({step.result.status.value})")
        elif isinstance(step, NoteStep):
            print(f"  {i} [{step.node}] note: {step.text}")


async def main() -> Trajectory:
    agent = build_react_agent(ReplayPolicy([recorded_episode()]), [multiply], max_steps=6)
    runtime = AgentRuntime(agent, run_id="example")
    traj = await runtime.run(PROMPT, task_id="eggs")
    show(traj)
    return traj


if __name__ == "__main__":
    asyncio.run(main())
