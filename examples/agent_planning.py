"""LLM+P and plan-then-verify on a generated blocksworld task, with the real planner and validator.

    python examples/agent_planning.py

LLM+P: the model writes the PDDL problem (first with an undefined object, then fixed), Fast
Downward solves it, the model explains the plan. Plan-then-verify: the model proposes the
plan itself; the validator explains the failing step, and the model fixes the plan. Both
policies replay recorded episodes, so the example runs offline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from reasonloop.agents import AgentRuntime
from reasonloop.agents.planning import build_llm_p_agent, build_plan_verify_agent
from reasonloop.agents.react import Agent
from reasonloop.planners import generate
from reasonloop.planners.tools import PlannerSessions, planner_tools
from reasonloop.policy.replay import ReplayPolicy
from reasonloop.trajectory.schema import NoteStep, PolicyStep, ToolStep, Trajectory

__all__ = ["main"]

INSTANCE = generate("blocksworld", seed=1, n_blocks=3)
PROBLEM = """(define (problem stack-two) (:domain blocksworld)
  (:objects b1 b2 b3)
  (:init (arm-empty) (on-table b3) (clear b3) (on-table b1) (on b2 b1) (clear b2))
  (:goal (and (on b3 b2))))"""


def replaying(build: Callable[..., Agent], prompt: str, *texts: str, **options: Any) -> Agent:
    """``build(policy, **options)`` whose policy replays ``texts`` as the model's turns for ``prompt``."""
    messages = build(ReplayPolicy([]), **options).messages(prompt)
    steps: list[Any] = [PolicyStep(text=t, finish_reason="stop", model="recorded-model") for t in texts]
    return build(ReplayPolicy([Trajectory(messages=messages, steps=steps)]), **options)


def show(title: str, traj: Trajectory) -> None:
    print(f"{title}: {traj.status}, answer {traj.final_answer!r}")
    for i, step in enumerate(traj.steps):
        if isinstance(step, PolicyStep):
            print(f"  {i} policy: {step.text.splitlines()[0]}")
        elif isinstance(step, ToolStep):
            print(f"  {i} {step.call.name}: {step.result.to_observation().splitlines()[-1][:110]}")
        elif isinstance(step, NoteStep):
            print(f"  {i} verdict: {step.data.get('verdict')} (attempt {step.data.get('attempt')})")


async def run(agent: Agent, prompt: str) -> Trajectory:
    async with AgentRuntime(agent, run_id="example") as runtime:
        return await runtime.run(prompt, task_id=INSTANCE.name)


async def main() -> tuple[Trajectory, Trajectory]:
    sessions = PlannerSessions()
    tools = planner_tools(sessions)
    try:
        task = f"Task: {INSTANCE.description}"
        llm_p = replaying(build_llm_p_agent, task, f"```pddl\n{PROBLEM.replace('(on b3 b2)', '(on b3 b4)')}\n```",
                          f"b4 does not exist; the goal is b3 on b2.\n```pddl\n{PROBLEM}\n```",
                          "Lift b3 off the table and put it on b2.\n<answer>(pick-up b3)\n(stack b3 b2)</answer>",
                          domain=INSTANCE.domain, tools=tools)  # fmt: skip
        first = await run(llm_p, task)
        show("llm+p", first)
        given = f"Domain:\n{INSTANCE.domain}\nProblem:\n{INSTANCE.problem}\nFind a plan."
        verify = replaying(
            build_plan_verify_agent,
            given,
            "<answer>(stack b3 b2)</answer>",
            "I must hold b3 first.\n<answer>1. pick up b3\n2. stack b3 on b2</answer>",
            tools=tools,
        )
        second = await run(verify, given)
        show("plan-verify", second)
    finally:
        sessions.shutdown()
    return first, second


if __name__ == "__main__":
    asyncio.run(main())
