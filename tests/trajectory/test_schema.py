"""The trajectory model: tagged steps, token views, validation, exact floats."""

import math

import pytest
from pydantic import ValidationError

from reasonloop.trajectory.schema import (
    SCHEMA_VERSION,
    MemoryStep,
    NoteStep,
    PolicyStep,
    Reward,
    ToolCall,
    ToolResult,
    ToolStatus,
    ToolStep,
    Trajectory,
    Usage,
)


def make() -> Trajectory:
    return Trajectory(
        run_id="r",
        task_id="t",
        prompt_token_ids=[1, 2, 3],
        steps=[
            PolicyStep(
                node="policy",
                text="<python>1</python>",
                token_ids=[10, 11],
                logprobs=[-0.5, -math.inf],
                entropies=[1.25, 0.0],
                entropy_kind="exact",
                usage=Usage(prompt_tokens=3, completion_tokens=2, cost_usd=0.5),
            ),
            ToolStep(
                node="tools",
                call=ToolCall(name="python", arguments={"code": "1"}),
                result=ToolResult(status=ToolStatus.OK, output="1"),
                token_ids=[20, 21, 22],
            ),
            MemoryStep(op="search", query="q", items=[{"k": 1}]),
            NoteStep(text="feedback", role="user", token_ids=[30]),
            PolicyStep(text="<answer>1</answer>", token_ids=[12], logprobs=[math.nan], usage=Usage(completion_tokens=1)),
        ],
        rewards=[Reward(name="correct", value=1.0, source="exact_match"), Reward(name="format", value=-0.25)],
    )


def test_token_views_and_masks():
    traj = make()
    assert traj.token_ids() == [1, 2, 3, 10, 11, 20, 21, 22, 30, 12]
    assert traj.loss_mask() == [0, 0, 0, 1, 1, 0, 0, 0, 0, 1]
    assert traj.reward == 0.75
    assert traj.usage.completion_tokens == 3 and traj.usage.cost_usd == 0.5
    assert len(traj.policy_steps()) == 2 and len(traj.tool_steps()) == 1
    assert traj.key == ("r", "t", 0, None)
    assert traj.schema_version == SCHEMA_VERSION


def test_json_round_trip_keeps_inf_and_nan():
    traj = make()
    text = traj.to_json()
    assert "-Infinity" in text and "NaN" in text
    back = Trajectory.from_json(text)
    assert back.to_json() == text
    assert [type(s).__name__ for s in back.steps] == ["PolicyStep", "ToolStep", "MemoryStep", "NoteStep", "PolicyStep"]
    assert math.isinf(back.steps[0].logprobs[1])


def test_validation_rules():
    with pytest.raises(ValidationError, match="logprobs has 1 values for 2 token ids"):
        PolicyStep(token_ids=[1, 2], logprobs=[0.0])
    with pytest.raises(ValidationError, match="parent_id and fork_step must be set together"):
        Trajectory(parent_id="p")
    with pytest.raises(ValidationError, match="fork_step must be >= 0"):
        Trajectory(parent_id="p", fork_step=-1)
    with pytest.raises(ValidationError):
        Trajectory.model_validate({"steps": [{"kind": "bogus"}]})
    with pytest.raises(ValidationError):
        Trajectory.model_validate({"unknown_field": 1})


def test_tool_result_observation_text():
    assert ToolResult(status=ToolStatus.OK, output="3").to_observation() == "3"
    err = ToolResult(status=ToolStatus.TIMEOUT, error="took too long", output="partial")
    assert err.to_observation() == "[timeout] took too long partial"
