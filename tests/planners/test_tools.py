"""The plan and validate_plan tools: schema from the signature, outcomes as tool results."""

from __future__ import annotations

import asyncio

from reasonloop.planners.generators import blocksworld, gripper
from reasonloop.planners.tools import PlannerSessions, plan, planner_tools, validate_plan
from reasonloop.tools.base import Toolset
from reasonloop.trajectory.schema import ToolCall, ToolStatus


def test_schemas_come_from_the_signatures() -> None:
    spec = plan.spec.parameters
    assert spec["required"] == ["domain", "problem"]
    assert spec["properties"]["planner"]["enum"] == ["fast-downward", "pyperplan", "enhsp"]
    assert spec["properties"]["timeout_s"]["maximum"] == 120.0
    assert validate_plan.spec.parameters["required"] == ["domain", "problem", "plan"]
    assert "ctx" not in spec["properties"]


def test_tools_in_a_toolset_share_one_warm_planner() -> None:
    inst = blocksworld(4, seed=1)
    sessions = PlannerSessions()
    toolset = Toolset(planner_tools(sessions))

    async def episode() -> list:
        with toolset.open("ep") as tools:
            solved = await tools.call(
                ToolCall(id="1", name="plan", arguments={"domain": inst.domain, "problem": inst.problem})
            )
            steps = "\n".join(solved.data["plan"]) if solved.data else ""
            checked = await tools.call(
                ToolCall(
                    id="2",
                    name="validate_plan",
                    arguments={"domain": inst.domain, "problem": inst.problem, "plan": steps},
                )
            )
            broken = await tools.call(
                ToolCall(
                    id="3",
                    name="validate_plan",
                    arguments={"domain": inst.domain, "problem": inst.problem, "plan": "(stack b1 b1)"},
                )
            )
            bad = await tools.call(
                ToolCall(id="4", name="plan", arguments={"domain": inst.domain, "problem": "(define (problem"})
            )
            wrong_arg = await tools.call(
                ToolCall(id="5", name="plan", arguments={"domain": "x", "problem": "y", "planner": "lpg"})
            )
            return [solved, checked, broken, bad, wrong_arg]

    try:
        solved, checked, broken, bad, wrong_arg = asyncio.run(episode())
    finally:
        sessions.shutdown()
    assert solved.status is ToolStatus.OK and solved.data and solved.data["status"] == "solved_satisficing"
    assert "steps:" in solved.output
    assert checked.status is ToolStatus.OK and checked.output.startswith("valid:")
    assert broken.status is ToolStatus.OK and broken.output.startswith("invalid_plan: step 1 (stack b1 b1)")
    assert bad.status is ToolStatus.ERROR and bad.error and "unbalanced" in bad.error
    assert wrong_arg.status is ToolStatus.INVALID_ARGUMENTS


def test_stateless_tool_reports_unsolvable_as_an_answer() -> None:
    inst = blocksworld(2, seed=0)
    cyclic = inst.problem.split("(:goal")[0] + "(:goal (and (on b1 b2) (on b2 b1))))"
    result = asyncio.run(plan({"domain": inst.domain, "problem": cyclic, "timeout_s": 20}))
    assert result.status is ToolStatus.OK and result.output.startswith("unsolvable")


def test_a_built_in_domain_is_accepted_by_name_and_an_unknown_name_is_an_error() -> None:
    inst = gripper(2, seed=1)
    by_name = asyncio.run(plan({"domain": "Gripper", "problem": inst.problem, "timeout_s": 20}))
    by_text = asyncio.run(plan({"domain": inst.domain, "problem": inst.problem, "timeout_s": 20}))
    assert by_name.status is ToolStatus.OK and by_name.data["plan"] == by_text.data["plan"]
    checked = asyncio.run(validate_plan({"domain": "gripper", "problem": inst.problem,
                                         "plan": "\n".join(by_name.data["plan"])}))
    assert checked.output.startswith("valid:")
    unknown = asyncio.run(plan({"domain": "sokoban", "problem": inst.problem}))
    assert unknown.status is ToolStatus.ERROR
    assert unknown.error and "sokoban" in unknown.error and "blocksworld" in unknown.error
