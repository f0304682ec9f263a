"""Trajectory -> training sequences: ids, loss mask, old log-probs, per-token step index.

The token stream of a trajectory is ``prompt_token_ids + steps[0].token_ids + ...``;
a policy step's ids were sampled (loss mask 1, with their log-probs and entropies),
every other step's ids were forced (mask 0). These functions are pure: plain lists,
and numpy arrays from :func:`collate` (numpy is imported there); :func:`to_torch`
converts a collated batch, importing torch then.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reasonloop.trajectory.schema import PolicyStep, Trajectory

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "PROMPT_STEP",
    "TrainingSequence",
    "collate",
    "to_torch",
    "trajectory_to_tensors",
    "verify_alignment",
]

PROMPT_STEP = -1
"""``step_index`` of prompt tokens."""


@dataclass(frozen=True, kw_only=True)
class TrainingSequence:
    """One trajectory as aligned per-token lists (all of length ``len(input_ids)``)."""

    input_ids: list[int]
    """The whole context: prompt, then every step's ids in order."""
    loss_mask: list[int]
    """1 on sampled ids (policy steps), 0 on prompt and forced ids."""
    old_logprobs: list[float]
    """Log-prob recorded when the id was sampled; 0.0 where the mask is 0."""
    entropies: list[float]
    """Entropy recorded when the id was sampled; 0.0 where the mask is 0."""
    step_index: list[int]
    """Index into ``Trajectory.steps`` of the step each id belongs to (``PROMPT_STEP`` for the prompt)."""
    trajectory_id: str = ""
    reward: float = 0.0
    """``Trajectory.reward`` (sum of components), for the advantage computation."""

    def __post_init__(self) -> None:
        n = len(self.input_ids)
        for name in ("loss_mask", "old_logprobs", "entropies", "step_index"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"TrainingSequence.{name} has {len(getattr(self, name))} values for {n} ids")

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def num_sampled(self) -> int:
        return sum(self.loss_mask)


def verify_alignment(traj: Trajectory) -> list[str]:
    """Problems that make ``traj`` unusable for training; empty when it is fine.

    Checks: the trajectory carries token ids at all; every policy step has ids and
    log-probs aligned with them, and finite values (log-probs <= 0, entropies >= 0);
    ids are non-negative; tool results between two policy turns were tokenised.
    """
    problems: list[str] = []
    tokenising = bool(traj.prompt_token_ids)
    if not tokenising:
        if any(step.token_ids for step in traj.steps):
            problems.append("prompt_token_ids is empty but steps carry token ids")
        else:
            problems.append("trajectory has no token ids (recorded from a policy that does not tokenise)")
        return problems
    if any(i < 0 for i in traj.prompt_token_ids):
        problems.append("prompt_token_ids contains negative ids")
    for index, step in enumerate(traj.steps):
        if any(i < 0 for i in step.token_ids):
            problems.append(f"step {index} ({step.kind}): negative token ids")
        if isinstance(step, PolicyStep):
            problems.extend(f"step {index} (policy): {p}" for p in _policy_step_problems(step))
    problems.extend(_untokenised_tool_results(traj))
    if not traj.policy_steps():
        problems.append("trajectory has no policy step (nothing to train on)")
    return problems


def _policy_step_problems(step: PolicyStep) -> list[str]:
    n = len(step.token_ids)
    if n == 0:
        return ["no token ids on a tokenising trajectory"]
    out: list[str] = []
    if step.logprobs is None:
        out.append(f"no logprobs for {n} sampled ids")
    elif len(step.logprobs) != n:
        out.append(f"{len(step.logprobs)} logprobs for {n} sampled ids")
    elif not all(math.isfinite(v) and v <= 1e-6 for v in step.logprobs):
        out.append("logprobs must be finite and <= 0")
    if step.entropies is not None:
        if len(step.entropies) != n:
            out.append(f"{len(step.entropies)} entropies for {n} sampled ids")
        elif not all(math.isfinite(v) and v >= -1e-6 for v in step.entropies):
            out.append("entropies must be finite and >= 0")
    return out


def _untokenised_tool_results(traj: Trajectory) -> list[str]:
    """Tool results after a policy turn must add forced ids before the next policy turn."""
    out: list[str] = []
    forced = 0
    pending: list[int] = []
    for index, step in enumerate(traj.steps):
        if isinstance(step, PolicyStep):
            if pending and forced == 0:
                out.append(f"tool steps {pending} appended no token ids before policy step {index}")
            forced, pending = 0, []
            continue
        forced += len(step.token_ids)
        if step.kind == "tool":
            pending.append(index)
    return out


def trajectory_to_tensors(traj: Trajectory) -> TrainingSequence:
    """Flatten ``traj`` into aligned per-token lists.

    Raises:
        ValueError: :func:`verify_alignment` found problems (all are listed).
    """
    problems = verify_alignment(traj)
    if problems:
        raise ValueError("trajectory is not aligned for training: " + "; ".join(problems))
    ids = list(traj.prompt_token_ids)
    mask = [0] * len(ids)
    logprobs = [0.0] * len(ids)
    entropies = [0.0] * len(ids)
    index = [PROMPT_STEP] * len(ids)
    for i, step in enumerate(traj.steps):
        n = len(step.token_ids)
        ids.extend(step.token_ids)
        index.extend([i] * n)
        if isinstance(step, PolicyStep):
            mask.extend([1] * n)
            logprobs.extend(step.logprobs or [0.0] * n)
            entropies.extend(step.entropies or [0.0] * n)
        else:
            mask.extend([0] * n)
            logprobs.extend([0.0] * n)
            entropies.extend([0.0] * n)
    return TrainingSequence(
        input_ids=ids,
        loss_mask=mask,
        old_logprobs=logprobs,
        entropies=entropies,
        step_index=index,
        trajectory_id=traj.id,
        reward=traj.reward,
    )


def collate(seqs: Sequence[TrainingSequence], pad_id: int, *, max_length: int | None = None) -> dict[str, np.ndarray]:
    """Right-pad a batch into ``(B, T)`` numpy arrays.

    Args:
        seqs: The sequences (at least one).
        pad_id: Id written in padding positions of ``input_ids``.
        max_length: Truncate longer sequences to this many tokens (from the right).

    Returns:
        ``input_ids`` (int64), ``attention_mask``/``loss_mask`` (int64, 0 on padding),
        ``old_logprobs``/``entropies`` (float32), ``step_index`` (int64, ``-2`` on padding)
        and ``rewards`` ``(B,)`` (float32).
    """
    import numpy as np

    if not seqs:
        raise ValueError("collate needs at least one sequence")
    if max_length is not None and max_length < 1:
        raise ValueError("max_length must be >= 1")
    width = max(len(s) for s in seqs)
    if max_length is not None:
        width = min(width, max_length)
    batch: dict[str, np.ndarray] = {
        "input_ids": np.full((len(seqs), width), pad_id, dtype=np.int64),
        "attention_mask": np.zeros((len(seqs), width), dtype=np.int64),
        "loss_mask": np.zeros((len(seqs), width), dtype=np.int64),
        "old_logprobs": np.zeros((len(seqs), width), dtype=np.float32),
        "entropies": np.zeros((len(seqs), width), dtype=np.float32),
        "step_index": np.full((len(seqs), width), PROMPT_STEP - 1, dtype=np.int64),
    }
    for row, seq in enumerate(seqs):
        n = min(len(seq), width)
        batch["input_ids"][row, :n] = seq.input_ids[:n]
        batch["attention_mask"][row, :n] = 1
        batch["loss_mask"][row, :n] = seq.loss_mask[:n]
        batch["old_logprobs"][row, :n] = seq.old_logprobs[:n]
        batch["entropies"][row, :n] = seq.entropies[:n]
        batch["step_index"][row, :n] = seq.step_index[:n]
    batch["rewards"] = np.array([s.reward for s in seqs], dtype=np.float32)
    return batch


def to_torch(batch: dict[str, np.ndarray], device: Any = None) -> dict[str, Any]:
    """The arrays of :func:`collate` as torch tensors on ``device`` (imports torch)."""
    import numpy as np
    import torch

    return {name: torch.from_numpy(np.ascontiguousarray(array)).to(device) for name, array in batch.items()}
