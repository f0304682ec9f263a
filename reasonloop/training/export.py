"""Trajectories -> Parquet files that TRL and verl read, token ids and masks included.

Both layouts keep the exact token stream: ``prompt_ids`` are the prompt's ids and
the response is everything after it (``response``/``completion`` ids), with a mask
that is 1 on what the policy sampled and 0 on what the environment forced (tool
results, template glue), so a trainer at scale trains on exactly the tokens sampled.

* ``trl``: ``prompt`` and ``completion`` as conversational messages (what TRL's
  trainers read), plus ``prompt_ids``, ``completion_ids``, ``completion_mask``,
  ``reward``.
* ``verl``: ``data_source``, ``prompt`` (messages), ``ability``, ``reward_model``
  (``{"style": "rule", "ground_truth": ...}``) and ``extra_info`` as in verl's RL
  datasets, plus ``input_ids``, ``prompt_ids``, ``response_ids``, ``response_mask``,
  ``response_logprobs``, ``reward``.

pyarrow is imported when writing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reasonloop.registry import Registry
from reasonloop.trajectory.schema import NoteStep, PolicyStep, ToolStep, Trajectory

__all__ = ["EXPORTS", "export_parquet", "response_messages", "trl_row", "verl_row"]


def _messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [{"role": str(m.get("role", "")), "content": str(m.get("content") or "")} for m in messages]


def response_messages(traj: Trajectory) -> list[dict[str, str]]:
    """The conversation after the prompt: assistant turns, tool results, shown notes."""
    out: list[dict[str, str]] = []
    for step in traj.steps:
        if isinstance(step, PolicyStep) and step.finish_reason != "error":
            out.append({"role": "assistant", "content": step.text})
        elif isinstance(step, ToolStep):
            out.append({"role": "tool", "content": step.result.to_observation()})
        elif isinstance(step, NoteStep) and step.role:
            out.append({"role": step.role, "content": step.text})
    return out


def _split(traj: Trajectory) -> tuple[list[int], list[int], list[int], list[float]]:
    n = len(traj.prompt_token_ids)
    ids, mask = traj.token_ids(), traj.loss_mask()
    logprobs: list[float] = []
    for step in traj.steps:
        sampled = isinstance(step, PolicyStep) and step.logprobs is not None and len(step.logprobs) == len(step.token_ids)
        logprobs.extend(step.logprobs if sampled else [0.0] * len(step.token_ids))  # type: ignore[union-attr, arg-type]
    return ids[:n], ids[n:], mask[n:], logprobs


def trl_row(traj: Trajectory, answer: str | None = None) -> dict[str, Any]:
    """One TRL row (conversational prompt/completion with token ids and mask)."""
    prompt_ids, response_ids, mask, _ = _split(traj)
    return {"prompt": _messages(traj.messages), "completion": response_messages(traj), "prompt_ids": prompt_ids,
            "completion_ids": response_ids, "completion_mask": mask, "reward": traj.reward,
            "trajectory_id": traj.id, "task_id": traj.task_id}


def verl_row(traj: Trajectory, answer: str | None = None) -> dict[str, Any]:
    """One verl row (RL dataset columns plus the multi-turn token columns)."""
    prompt_ids, response_ids, mask, logprobs = _split(traj)
    return {
        "data_source": traj.metadata.get("suite", traj.agent or "reasonloop"),
        "prompt": _messages(traj.messages),
        "ability": "agent",
        "reward_model": {"style": "rule", "ground_truth": answer or ""},
        "extra_info": {"trajectory_id": traj.id, "task_id": traj.task_id, "parent_id": traj.parent_id or "",
                       "fork_step": -1 if traj.fork_step is None else traj.fork_step,
                       "rewards": json.dumps([r.model_dump() for r in traj.rewards])},
        "input_ids": prompt_ids + response_ids, "prompt_ids": prompt_ids, "response_ids": response_ids,
        "response_mask": mask, "response_logprobs": logprobs, "reward": traj.reward,
    }


EXPORTS: Registry[Callable[[Trajectory, str | None], dict[str, Any]]] = Registry("export format")
EXPORTS.register("trl", trl_row)
EXPORTS.register("verl", verl_row)


def export_parquet(trajectories: Sequence[Trajectory], path: str | Path, *, fmt: str = "verl",
                   answers: Mapping[str, str] | None = None) -> tuple[Path, list[str]]:
    """Write the tokenised trajectories as Parquet in ``fmt`` (``trl`` or ``verl``).

    Args:
        trajectories: Trajectories to export; those without token ids are skipped.
        path: Output file.
        fmt: Row layout.
        answers: Reference answer by task id (verl's ``reward_model.ground_truth``).

    Returns:
        The path and the ids of the skipped trajectories.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    row_fn = EXPORTS.get(fmt)
    rows, skipped = [], []
    for traj in trajectories:
        if not traj.prompt_token_ids:
            skipped.append(traj.id)
            continue
        rows.append(row_fn(traj, (answers or {}).get(traj.task_id)))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out, skipped
