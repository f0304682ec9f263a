"""Rewards: each component on hand-built trajectories, and the paper's composition."""

from __future__ import annotations

import pytest

from reasonloop.bench.task import Task
from reasonloop.errors import UnknownNameError
from reasonloop.training.rewards import (
    REWARDS,
    RewardStack,
    format_problems,
    math_reward,
    token_f1,
)
from reasonloop.trajectory.schema import PolicyStep, ToolCall, ToolResult, ToolStatus, ToolStep, Trajectory


def _traj(turns: list[tuple[str, list[ToolCall]]], *, results: bool = True, answer: str | None = None,
          status: str = "finished") -> Trajectory:
    steps: list[PolicyStep | ToolStep] = []
    for text, calls in turns:
        steps.append(PolicyStep(text=text, tool_calls=calls))
        if results:
            steps.extend(ToolStep(call=c, result=ToolResult(status=ToolStatus.OK, output="7")) for c in calls)
    return Trajectory(steps=steps, final_answer=answer, status=status)  # type: ignore[arg-type]


CALC = ToolCall(id="c1", name="calculator", arguments={"expression": "3 + 4"})
SEARCH = ToolCall(id="c2", name="search", arguments={"query": "x"})
GOOD = [("<calculator>3 + 4</calculator>", [CALC]), ("It is 7. <answer>7</answer>", [])]
TASK = Task(id="t", suite="s", prompt="3 + 4?", answer="7", verifier="numeric")


def test_token_f1_by_hand() -> None:
    # pred {the cat sat} -> {cat, sat}; ref {cat, sat, down}: P = 1, R = 2/3, F1 = 0.8
    assert token_f1("The cat sat", "cat sat down") == pytest.approx(0.8)
    assert token_f1("dog", "cat") == 0.0
    assert token_f1("", "") == 1.0


def test_format_problems_name_each_defect() -> None:
    assert format_problems(_traj(GOOD, answer="7")) == []
    assert "unbalanced tags answer" in format_problems(_traj([("<answer>7", [])], answer=None))[0]
    assert any("without a result" in p for p in format_problems(_traj(GOOD, results=False, answer="7")))
    no_answer = _traj([("It is 7.", [])], answer="It is 7.")
    assert format_problems(no_answer) == ["no final answer in <answer> tags"]
    assert format_problems(_traj(GOOD, answer="7", status="truncated")) == ["no final answer in <answer> tags"]


def test_paper_reward_gates_on_format_and_adds_the_multi_tool_bonus() -> None:
    stack = RewardStack(correctness=("verifier",))
    good = stack.score(_traj(GOOD, answer="7"), TASK)
    assert [(r.name, r.value) for r in good] == [("format", 0.0), ("verifier", 1.0), ("multi_tool", 0.0)]
    assert good[1].source == "verifier:numeric"
    two_tools = [("<calculator>3 + 4</calculator><search>x</search>", [CALC, SEARCH]), ("<answer>7</answer>", [])]
    bonus = stack.score(_traj(two_tools, answer="7"), TASK)
    assert sum(r.value for r in bonus) == pytest.approx(1.1)
    wrong = stack.score(_traj([*GOOD[:1], ("<answer>8</answer>", [])], answer="8"), TASK)
    assert sum(r.value for r in wrong) == 0.0
    bad = stack.score(_traj([("<answer>7", [])], answer=None), TASK)
    assert [(r.name, r.value) for r in bad] == [("format", -1.0)]
    assert "unbalanced" in (bad[0].explanation or "")


def test_components_exact_f1_math() -> None:
    traj = _traj(GOOD, answer="The 7.")
    assert REWARDS.get("exact")(traj, TASK).value == 1.0  # type: ignore[union-attr]
    assert REWARDS.get("f1")(traj, TASK).value == 1.0  # type: ignore[union-attr]
    half = Task(id="h", suite="s", prompt="?", answer="\\frac{1}{2}")
    assert math_reward(_traj(GOOD, answer="0.5"), half).value == 1.0  # type: ignore[union-attr]
    assert math_reward(_traj(GOOD, answer="0.6"), half).value == 0.0  # type: ignore[union-attr]
    assert math_reward(_traj(GOOD, answer="\\frac{{{"), half).value == 0.0  # type: ignore[union-attr]
    assert REWARDS.get("exact")(traj, None) is None


def test_unknown_component_fails_with_the_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="exact"):
        RewardStack(correctness=("exactt",))


def test_stack_is_a_runtime_scorer_and_judges_correctness() -> None:
    stack = RewardStack(correctness=("exact",), multi_tool_bonus=0.0)
    rewards = stack.scorer(TASK)(_traj(GOOD, answer="7"))
    assert [r.name for r in rewards] == ["format", "exact"] and stack.is_correct(rewards)
    assert not stack.is_correct([r for r in rewards if r.name == "format"])
