"""Export to TRL / verl Parquet: the token columns are the sampled stream, split at the prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonloop.training.export import export_parquet
from reasonloop.trajectory.schema import PolicyStep, Reward, ToolCall, ToolResult, ToolStatus, ToolStep, Trajectory

pq = pytest.importorskip("pyarrow.parquet")


def _traj() -> Trajectory:
    call = ToolCall(name="lookup", arguments={"key": "42"})
    return Trajectory(
        task_id="t1", messages=[{"role": "user", "content": "Code of 42?"}], prompt_token_ids=[1, 2, 3],
        steps=[
            PolicyStep(text="<lookup>42</lookup>", token_ids=[10, 11], logprobs=[-0.5, -0.25], tool_calls=[call]),
            ToolStep(call=call, result=ToolResult(status=ToolStatus.OK, output="7"), token_ids=[20, 21, 22]),
            PolicyStep(text="<answer>7</answer>", token_ids=[12, 13], logprobs=[-0.1, -0.2]),
        ],
        final_answer="7", status="finished", rewards=[Reward(name="exact", value=1.0)],
    )


def test_verl_rows_keep_ids_masks_and_logprobs(tmp_path: Path) -> None:
    no_ids = Trajectory(task_id="t2", steps=[PolicyStep(text="hi")])
    path, skipped = export_parquet([_traj(), no_ids], tmp_path / "v.parquet", fmt="verl", answers={"t1": "7"})
    assert skipped == [no_ids.id]
    (row,) = pq.read_table(path).to_pylist()
    assert row["prompt_ids"] == [1, 2, 3] and row["response_ids"] == [10, 11, 20, 21, 22, 12, 13]
    assert row["input_ids"] == [1, 2, 3, 10, 11, 20, 21, 22, 12, 13]
    assert row["response_mask"] == [1, 1, 0, 0, 0, 1, 1]
    assert row["response_logprobs"] == [-0.5, -0.25, 0.0, 0.0, 0.0, -0.1, -0.2]
    assert row["reward_model"] == {"style": "rule", "ground_truth": "7"} and row["reward"] == 1.0
    assert row["prompt"] == [{"role": "user", "content": "Code of 42?"}]


def test_trl_rows_are_conversational_with_token_columns(tmp_path: Path) -> None:
    path, _ = export_parquet([_traj()], tmp_path / "t.parquet", fmt="trl")
    (row,) = pq.read_table(path).to_pylist()
    assert [m["role"] for m in row["completion"]] == ["assistant", "tool", "assistant"]
    assert row["completion"][1]["content"] == "7"
    assert row["completion_ids"] == [10, 11, 20, 21, 22, 12, 13] and row["completion_mask"] == [1, 1, 0, 0, 0, 1, 1]
