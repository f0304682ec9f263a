"""Rows from groups: advantages per token, counted-once weights for shared prefixes, exact ids."""

from __future__ import annotations

import pytest

from reasonloop.training.batch import check_rows, group_advantages, group_rows
from reasonloop.training.rollout import Group, group_shape
from reasonloop.trajectory.schema import PolicyStep, Reward, ToolCall, ToolResult, ToolStatus, ToolStep, Trajectory

CALL = ToolCall(id="c", name="lookup", arguments={"key": "1"})


def _steps(answer_ids: list[int]) -> list[PolicyStep | ToolStep]:
    return [
        PolicyStep(token_ids=[10, 11], logprobs=[-0.1, -0.2], tool_calls=[CALL]),
        ToolStep(call=CALL, result=ToolResult(status=ToolStatus.OK, output="5"), token_ids=[20, 21]),
        PolicyStep(token_ids=answer_ids, logprobs=[-0.3] * len(answer_ids)),
    ]


def _group() -> Group:
    parent = Trajectory(prompt_token_ids=[1, 2], steps=_steps([30, 31]), rewards=[Reward(name="r", value=1.0)])  # type: ignore[arg-type]
    child = Trajectory(prompt_token_ids=[1, 2], steps=_steps([40]), parent_id=parent.id, fork_step=2,  # type: ignore[arg-type]
                       rewards=[Reward(name="r", value=0.0)])
    trajs = [parent, child]
    return Group(task_id="t", trajectories=trajs, shape=group_shape(trajs))


def test_hard_attribution_counts_the_shared_prefix_once() -> None:
    group = _group()
    assert list(group.shape.parents) == [None, 0] and list(group.shape.fork_steps) == [None, 2]
    per_step, _ = group_advantages(group, "hard")
    rows, skipped = group_rows(group, per_step)
    assert skipped == []
    parent, child = rows
    a = 0.5 / (0.5**0.5 + 1e-6)  # rewards (1, 0): (1 - mean 0.5) / (sample std 0.7071) = 0.7071
    # parent: prompt 0,0 | shared policy step (mean of +a and -a = 0) | tool 0,0 | own answer +a
    assert parent.weights == [0, 0, 1, 1, 0, 0, 1, 1]
    assert parent.advantages == pytest.approx([0, 0, 0, 0, 0, 0, a, a], abs=1e-5)
    # child: the shared policy step is a copy (weight 0); its own answer gets -a
    assert child.weights == [0, 0, 0, 0, 0, 0, 1]
    assert child.advantages[-1] == pytest.approx(-a, abs=1e-5)
    soft, _ = group_advantages(group, "grpo")
    soft_rows, _ = group_rows(group, soft)
    assert soft_rows[1].weights == [0, 0, 1, 1, 0, 0, 1]  # soft: the prefix appears in both rows
    assert check_rows(group.trajectories, rows) == []


def test_check_rows_catches_tokens_that_were_not_sampled() -> None:
    group = _group()
    rows, _ = group_rows(group, group_advantages(group, "grpo")[0])
    group.trajectories[1].steps[2].token_ids = [41]  # the row no longer matches the recording
    problems = check_rows(group.trajectories, rows)
    assert len(problems) == 2 and "differ" in problems[0]


def test_entropy_scaled_advantages_follow_aepo() -> None:
    group = _group()
    group.trajectories[0].steps[0].entropies = [2.0, 2.0]  # type: ignore[union-attr]
    group.trajectories[0].steps[2].entropies = [2.0, 2.0]  # type: ignore[union-attr]
    group.trajectories[1].steps[0].entropies = [0.0, 0.0]  # type: ignore[union-attr]
    group.trajectories[1].steps[2].entropies = [0.0]  # type: ignore[union-attr]
    plain, _ = group_advantages(group, "grpo")
    scaled, _ = group_advantages(group, "grpo", entropy_scale=0.2)
    # z(H) = (+0.7071, -0.7071): factors 1 +- 0.1414
    assert scaled[0][0][0] == pytest.approx(plain[0][0][0] * (1 + 0.2 * 0.70710678), abs=1e-5)
    assert scaled[1][0][0] == pytest.approx(plain[1][0][0] * (1 - 0.2 * 0.70710678), abs=1e-5)


def test_empg_modulates_each_policy_step_by_its_own_entropy() -> None:
    from reasonloop.training.advantages import EMPGSettings

    group = _group()
    group.trajectories[0].steps[0].entropies = [0.0, 0.0]  # type: ignore[union-attr]
    group.trajectories[0].steps[2].entropies = [1.0, 1.0]  # type: ignore[union-attr]
    group.trajectories[1].steps[0].entropies = [0.0, 0.0]  # type: ignore[union-attr]
    group.trajectories[1].steps[2].entropies = [1.0]  # type: ignore[union-attr]
    plain, _ = group_advantages(group, "grpo")
    empg, metrics = group_advantages(group, "grpo", empg=EMPGSettings(k=1.0, zeta=0.0))
    # two steps at H_norm 0 (weight 1) and two at 1 (exp(-1)); the mean is 0.68394
    assert empg[0][0][0] == pytest.approx(plain[0][0][0] / 0.6839397, abs=1e-5)
    assert empg[0][2][0] == pytest.approx(plain[0][2][0] * 0.3678794 / 0.6839397, abs=1e-5)
    assert empg[0][1] == plain[0][1]  # the tool step is untouched
    assert metrics["empg_weight_max"] == pytest.approx(1 / 0.6839397, abs=1e-5)
