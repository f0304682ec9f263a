"""Trajectory -> training tensors: alignment, masks, padding, and the problems it reports."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reasonloop.trajectory.schema import (
    MemoryStep,
    NoteStep,
    PolicyStep,
    Reward,
    ToolCall,
    ToolResult,
    ToolStatus,
    ToolStep,
    Trajectory,
)
from reasonloop.trajectory.tensors import PROMPT_STEP, collate, to_torch, trajectory_to_tensors, verify_alignment


def _tool_step(ids: list[int]) -> ToolStep:
    return ToolStep(
        call=ToolCall(name="calc", arguments={"e": "1"}),
        result=ToolResult(status=ToolStatus.OK, output="1"),
        token_ids=ids,
    )


def _traj() -> Trajectory:
    return Trajectory(
        prompt_token_ids=[1, 2, 3],
        steps=[
            PolicyStep(token_ids=[10, 11], logprobs=[-0.5, -1.5], entropies=[2.0, 1.0]),
            _tool_step([20, 21, 22]),
            MemoryStep(op="read"),
            PolicyStep(token_ids=[12], logprobs=[-0.25], entropies=None),
            NoteStep(role="user", text="sure?", token_ids=[30]),
            PolicyStep(token_ids=[13, 14], logprobs=[-0.1, -0.2], entropies=[0.5, 0.25]),
        ],
        rewards=[Reward(name="correct", value=1.0), Reward(name="format", value=0.5)],
    )


def test_sequence_is_aligned_with_the_trajectory() -> None:
    traj = _traj()
    assert verify_alignment(traj) == []
    seq = trajectory_to_tensors(traj)
    assert seq.input_ids == traj.token_ids() == [1, 2, 3, 10, 11, 20, 21, 22, 12, 30, 13, 14]
    assert seq.loss_mask == traj.loss_mask() == [0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1]
    assert seq.old_logprobs == [0, 0, 0, -0.5, -1.5, 0, 0, 0, -0.25, 0, -0.1, -0.2]
    assert seq.entropies == [0, 0, 0, 2.0, 1.0, 0, 0, 0, 0.0, 0, 0.5, 0.25]
    assert seq.step_index == [PROMPT_STEP] * 3 + [0, 0, 1, 1, 1, 3, 4, 5, 5]
    assert seq.num_sampled == 5 and len(seq) == 12
    assert seq.reward == 1.5 and seq.trajectory_id == traj.id


def test_collate_pads_right_and_masks_padding() -> None:
    a = trajectory_to_tensors(_traj())
    short = Trajectory(prompt_token_ids=[7], steps=[PolicyStep(token_ids=[8], logprobs=[-1.0])])
    b = trajectory_to_tensors(short)
    batch = collate([a, b], pad_id=0)
    assert batch["input_ids"].shape == (2, 12) and batch["input_ids"].dtype == np.int64
    assert batch["input_ids"][1].tolist() == [7, 8] + [0] * 10
    assert batch["attention_mask"].sum(1).tolist() == [12, 2]
    assert batch["loss_mask"][1].tolist() == [0, 1] + [0] * 10
    assert batch["old_logprobs"].dtype == np.float32 and batch["old_logprobs"][1, 1] == -1.0
    assert batch["step_index"][1, 2:].tolist() == [PROMPT_STEP - 1] * 10
    assert batch["rewards"].tolist() == [1.5, 0.0]
    cut = collate([a, b], pad_id=0, max_length=4)
    assert cut["input_ids"].shape == (2, 4) and cut["loss_mask"][0].tolist() == [0, 0, 0, 1]
    with pytest.raises(ValueError, match="at least one"):
        collate([], pad_id=0)


def test_to_torch_keeps_values_and_dtypes() -> None:
    torch = pytest.importorskip("torch")
    batch = to_torch(collate([trajectory_to_tensors(_traj())], pad_id=0))
    assert batch["input_ids"].dtype == torch.int64 and batch["old_logprobs"].dtype == torch.float32
    assert batch["loss_mask"].tolist() == [_traj().loss_mask()]


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda t: t.steps.__setitem__(0, PolicyStep(token_ids=[10, 11])), "no logprobs for 2 sampled ids"),
        (
            lambda t: t.steps.__setitem__(
                0, PolicyStep.model_construct(token_ids=[10, 11], logprobs=[-1.0], entropies=None, kind="policy")
            ),
            "1 logprobs for 2 sampled ids",
        ),
        (lambda t: t.steps.__setitem__(0, PolicyStep(token_ids=[10, 11], logprobs=[-1.0, math.nan])), "finite"),
        (lambda t: t.steps.__setitem__(0, PolicyStep(token_ids=[10, 11], logprobs=[-1.0, 0.5])), "<= 0"),
        (lambda t: t.steps.__setitem__(0, PolicyStep(token_ids=[10], logprobs=[-1.0], entropies=[-2.0])), ">= 0"),
        (lambda t: t.steps.__setitem__(0, PolicyStep(text="hi")), "no token ids on a tokenising trajectory"),
        (lambda t: t.steps.__setitem__(1, _tool_step([])), "tool steps [1] appended no token ids"),
        (lambda t: t.steps.__setitem__(4, NoteStep(token_ids=[-3])), "negative token ids"),
    ],
)
def test_verify_alignment_names_each_problem(mutate, problem: str) -> None:  # type: ignore[no-untyped-def]
    traj = _traj()
    mutate(traj)
    problems = verify_alignment(traj)
    assert any(problem in p for p in problems), problems
    with pytest.raises(ValueError, match="not aligned"):
        trajectory_to_tensors(traj)


def test_untokenised_trajectories_are_reported() -> None:
    api = Trajectory(steps=[PolicyStep(text="hello")])
    assert verify_alignment(api) == ["trajectory has no token ids (recorded from a policy that does not tokenise)"]
    orphan = Trajectory(steps=[PolicyStep(token_ids=[1], logprobs=[-1.0])])
    assert verify_alignment(orphan) == ["prompt_token_ids is empty but steps carry token ids"]
    no_policy = Trajectory(prompt_token_ids=[1], steps=[NoteStep(token_ids=[2])])
    assert verify_alignment(no_policy) == ["trajectory has no policy step (nothing to train on)"]


def test_tool_results_sharing_one_forced_span_are_fine() -> None:
    """Several calls in one turn: the results may be tokenised together on one step."""
    traj = Trajectory(
        prompt_token_ids=[1],
        steps=[
            PolicyStep(token_ids=[2], logprobs=[-1.0]),
            _tool_step([3, 4]),
            _tool_step([]),
            PolicyStep(token_ids=[5], logprobs=[-1.0]),
        ],
    )
    assert verify_alignment(traj) == []
