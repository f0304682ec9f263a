"""LLM+P and plan-then-verify: real planner and validator, wrong attempts repaired from their feedback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reasonloop.agents import AgentRuntime
from reasonloop.agents.planning import (
    build_llm_p_agent,
    build_plan_verify_agent,
    find_pddl,
    llm_p_agent_from_toolset,
)
from reasonloop.agents.react import Agent
from reasonloop.policy.replay import ReplayPolicy
from reasonloop.tools.base import Tool
from reasonloop.trajectory.schema import NoteStep, PolicyStep, Trajectory

pytestmark = pytest.mark.timeout(180)

PROBLEM = """(define (problem stack-two)
  (:domain blocksworld)
  (:objects b1 b2 b3)
  (:init (arm-empty) (on-table b3) (clear b3) (on-table b1) (on b2 b1) (clear b2))
  (:goal (and (on b3 b2))))"""
UNDEFINED = PROBLEM.replace("(on b3 b2))))", "(on b3 b4))))")
UNSOLVABLE = PROBLEM.replace("(on b3 b2))))", "(on b3 b3))))")
PLAN = "(pick-up b3)\n(stack b3 b2)"


@pytest.fixture(scope="module")
def planner() -> Iterator[list[Tool]]:
    from reasonloop.planners.tools import PlannerSessions, planner_tools

    sessions = PlannerSessions()
    yield planner_tools(sessions)
    sessions.shutdown()


@pytest.fixture(scope="module")
def instance() -> Any:
    from reasonloop.planners import generate

    return generate("blocksworld", seed=1, n_blocks=3)


def turn(text: str) -> PolicyStep:
    return PolicyStep(text=text, finish_reason="stop", model="rec")


def run(build: Callable[..., Agent], prompt: str, *turns: PolicyStep, **options: Any) -> Trajectory:
    messages = build(ReplayPolicy([]), **options).messages(prompt)
    agent = build(ReplayPolicy([Trajectory(task_id="t0", messages=messages, steps=list(turns))]), **options)

    async def go() -> Trajectory:
        async with AgentRuntime(agent) as runtime:
            return await runtime.run(prompt, task_id="t0")

    return asyncio.run(go())


def verdicts(traj: Trajectory) -> list[NoteStep]:
    return [s for s in traj.steps if isinstance(s, NoteStep) and "verdict" in s.data]


def test_find_pddl_skips_comments_and_keeps_unbalanced_text() -> None:
    text = f"Here it is:\n```pddl\n; a comment with ) parens (\n{PROBLEM}\n```\nDone."
    assert find_pddl(text, "problem") == PROBLEM
    assert find_pddl("(define (problem p) (:domain d)", "problem") == "(define (problem p) (:domain d)"
    assert find_pddl("no pddl here", "domain") is None


def test_llm_p_repairs_an_undefined_object_and_an_unsolvable_goal(planner: list[Tool], instance: Any) -> None:
    prompt = f"Task: {instance.description}"
    traj = run(
        build_llm_p_agent, prompt,
        turn(f"```pddl\n{UNDEFINED}\n```"),
        turn(f"Fixed the object.\n```pddl\n{UNSOLVABLE}\n```"),
        turn(f"The goal was wrong.\n```pddl\n{PROBLEM}\n```"),
        turn(f"Pick up b3 from the table, then put it on b2.\n<answer>\n{PLAN}\n</answer>"),
        domain=instance.domain, tools=planner, max_repairs=3,
    )  # fmt: skip
    assert traj.status == "finished" and traj.final_answer == PLAN
    assert [s.call.name for s in traj.tool_steps()] == ["plan", "plan", "plan", "validate_plan"]
    undefined, unsolvable, solved = verdicts(traj)
    assert undefined.data["plan_status"] == "invalid_input" and "undefined object 'b4'" in undefined.text
    assert "problem line 5" in undefined.text and undefined.role == "user"
    assert unsolvable.data["plan_status"] == "unsolvable" and "has no solution" in unsolvable.text
    assert solved.data["verdict"] == "accepted" and solved.data["repairs"] == 2 and solved.data["attempt"] == 3
    # the model saw the plan and was asked to explain it; its explanation is the last policy step
    assert "(stack b3 b2)" in solved.text and "Explain the plan" in solved.text
    assert "Pick up b3" in traj.policy_steps()[-1].text
    assert traj.tool_steps()[-1].result.data["status"] == "valid"  # type: ignore[index]
    assert instance.domain.strip() in traj.messages[0]["content"]


def test_llm_p_k_limit_and_domain_from_the_prompt(planner: list[Tool], instance: Any) -> None:
    prompt = f"Domain:\n{instance.domain}\nTask: {instance.description}"
    traj = run(llm_p_agent_from_toolset, prompt, turn(f"```pddl\n{UNDEFINED}\n```"), turn(f"```pddl\n{PROBLEM}\n```"),
               tools=planner, max_repairs=0)  # fmt: skip
    assert traj.status == "truncated" and traj.final_answer is None and len(traj.policy_steps()) == 1
    assert verdicts(traj)[0].data["status"] == "truncated" and "max_repairs=0" in traj.metadata["stop_reason"]


def test_plan_verify_explains_each_failure_until_the_plan_is_valid(planner: list[Tool], instance: Any) -> None:
    prompt = f"Domain:\n{instance.domain}\nProblem:\n{instance.problem}\nFind a plan."
    traj = run(
        build_plan_verify_agent, prompt,
        turn("<answer>(stack b3 b2)</answer>"),
        turn("<answer>(pick-up b3)</answer>"),
        turn("<answer>\n1. pick up b3\n2. stack b3 on b2\n</answer>"),
        tools=planner,
    )  # fmt: skip
    assert traj.status == "finished" and traj.final_answer == PLAN
    first, second, third = verdicts(traj)
    assert first.data["failed_step"] == 1 and "(holding b3) are false" in first.text
    assert second.data["unmet_goals"] == ["(on b3 b2)"] and "goals are false: (on b3 b2)" in second.text
    assert third.data["verdict"] == "accepted" and third.data["repairs"] == 2
    assert traj.tool_steps()[0].call.arguments["plan"] == "(stack b3 b2)"


def test_plan_verify_k_limit(planner: list[Tool], instance: Any) -> None:
    prompt = f"Domain:\n{instance.domain}\nProblem:\n{instance.problem}\nPlan it."
    traj = run(build_plan_verify_agent, prompt, turn("<answer>(stack b3 b2)</answer>"), turn("no plan, sorry"),
               turn(f"<answer>{PLAN}</answer>"), tools=planner, max_repairs=1)  # fmt: skip
    assert traj.status == "truncated" and len(traj.policy_steps()) == 2
    missing = verdicts(traj)[-1]
    assert missing.data["verdict"] == "missing" and missing.data["status"] == "truncated"
